/* hooks of core/ops/elementwise*.c */
