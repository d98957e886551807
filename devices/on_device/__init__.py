"""The torch-free on-device validation script; a package only so the pipeline can import its measuring code."""
