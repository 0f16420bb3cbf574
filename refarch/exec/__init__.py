"""The bottom of the run stack: processes, retry rules and their one attempt loop, masking."""
