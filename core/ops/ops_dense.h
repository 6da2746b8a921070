/* hooks of core/ops/dense*.c */
