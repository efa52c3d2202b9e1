"""FaceApp: real-time face recognition (YuNet detection, SFace embedding, SQLite gallery).

Importing the package is cheap: TensorFlow, OpenCV and Qt are imported only by the
modules that need them, when they are first used.
"""

__version__ = "0.1.0"
