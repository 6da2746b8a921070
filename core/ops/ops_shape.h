/* hooks of core/ops/shape*.c */
