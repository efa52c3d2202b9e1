"""The desktop app's worker threads: capture, recognition and the controller that owns them."""
