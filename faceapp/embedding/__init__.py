"""Face embedding: the SFace CNN as a tf.keras model, its weights, and a batched runner."""
