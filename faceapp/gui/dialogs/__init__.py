"""The desktop app's dialogs: enroll from the camera, add from photos, the gallery manager, the source picker."""
