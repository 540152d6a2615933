"""Models: the stage estimators (LightGBM with calibration, logistic baseline) and the tier policy."""
