"""The stream engine: consumer thread, offset tracking, scheduling, outcome writing."""
