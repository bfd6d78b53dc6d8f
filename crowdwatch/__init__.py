"""crowdwatch."""
