"""The MLflow "model from code" script of the stage models (``mlflow.pyfunc.log_model(python_model=<this file>)``).

MLflow stores this file's text with the model and runs it on loading, instead of unpickling a
Python object with CloudPickle; the fitted estimator itself travels as the ``stage_model`` artifact.
"""

import mlflow.models

from models.pyfunc import StageModelPyfunc

mlflow.models.set_model(StageModelPyfunc())
