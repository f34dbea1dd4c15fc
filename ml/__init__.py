"""Models: data loading, training and prediction kept apart, a versioned registry of model files."""
