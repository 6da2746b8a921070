/* ops_nn.h: hooks of the ai.onnx neural-network kernel families. */
#include "ops_elementwise.h"
#include "ops_dense.h"
#include "ops_norm.h"
#include "ops_shape.h"
