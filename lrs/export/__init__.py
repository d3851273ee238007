"""District data exports."""
