"""Vision: face detection, 5-point alignment, face quality and box geometry (numpy + OpenCV, no Qt)."""
