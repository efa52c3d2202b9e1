"""Where and how the CNNs run: the device choice, TensorFlow import and LiteRT conversion (shared by vision and embedding)."""
