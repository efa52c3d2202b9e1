"""Media: frame sources and readers, image files, the latest-frame slot, overlays and privacy (blurring) of written images."""
