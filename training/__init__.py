"""Training: fit the stage models, track runs in MLflow, register and promote behind a gate."""
