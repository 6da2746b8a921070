/* ops_nn.h: hooks of the ai.onnx neural-network kernel families. */
