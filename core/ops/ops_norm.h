/* hooks of core/ops/norm*.c */
