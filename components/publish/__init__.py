"""Publish: copy a blessed model with its model card into the versioned model store (local path or s3://)."""
