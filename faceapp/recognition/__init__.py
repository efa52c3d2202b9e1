"""Recognition: the pipeline (detect, align, embed, match, optional tracking), matching, tracking, name voting and enrollment."""
