"""Records in, answers out: the scoring path shared by the service, the console and ``riskctl score``.

- :class:`Scorer` scores validated :class:`~serving.scoring.schemas.ScoreRequest` objects with the three
  stage models and the tier policy: calibrated probability, band, tier by risk and effective tier,
  reasons in zh or en (:func:`reasons`), and the audit fields of each answer (:class:`Scored`). A stage
  with no model raises :class:`NoModelError` before anything is scored; its message, in zh or en, says what a
  modeler does (:func:`no_model_message`), and the service answers it with 503. Requests reach the feature
  pipeline as arrays (:func:`request_tables`), and :func:`requests_from_tables` turns canonical tables into requests.
  :meth:`Scorer.brief` answers a batch with only the codes, probability and reasons' sizes (:class:`Brief`), for
  comparing two models' answers; its batch is :class:`RequestColumns`, of validated requests
  (:func:`request_columns`) or of requests read back from the audit trail (:func:`trusted_stored_request`, then
  :func:`stored_request_columns`: they were validated when answered, so only their shape is checked again).
- :class:`Combiner` scores concurrent single requests together (one scoring pass, one audit commit);
  :func:`score_combiner` is the service's, which retries a failed group request by request.
- The served models: :func:`import_champions` copies each stage's MLflow ``@champion`` into the BentoML
  model store (:func:`bento_model_name`, :func:`save_served`), and :func:`load_served` reads one back as a
  :class:`ServedModel`, so a built Bento serves without MLflow; :func:`model_info` is what ``/models``
  says of it. A stage whose registered model has no champion is not imported, and :func:`served_models` reads
  the stages that have a model (:func:`stored_model`) with why each other one has none
  (``schemas.UnservedStage``); with none at all, :func:`nothing_to_serve` says why the service does not start.
  A registry that cannot be read is an error (``training.registry.RegistryError``), never "no champion".
- :mod:`serving.scoring.schemas` holds the typed requests and answers (they make the OpenAPI page);
  :func:`answer_tier_by_risk` and :func:`answer_tier` read the two tiers back from an answer, stored or new,
  and :func:`answer_in` renders a stored answer's words in another language from its codes and values;
  :func:`message` says what is wrong with a field in zh or en (the API's refusals and the console's forms).

No HTTP and no database here: the service (:mod:`serving.api`) and the CLI store what this returns.
"""

from serving.scoring._answers import answer_in, answer_tier, answer_tier_by_risk
from serving.scoring._columns import (
    RequestColumns,
    request_columns,
    stored_request_columns,
    trusted_stored_request,
)
from serving.scoring._combine import Combiner, score_combiner
from serving.scoring._messages import NO_MODEL_MESSAGES, ZH_MESSAGES, message, message_zh, no_model_message
from serving.scoring._model_store import (
    ServedModel,
    bento_model_name,
    import_champions,
    load_served,
    model_info,
    nothing_to_serve,
    save_served,
    served_models,
    stages_without_champion,
    stored_model,
)
from serving.scoring._scorer import (
    MIN_CONTRIBUTION,
    Brief,
    NoModelError,
    Scored,
    Scorer,
    reasons,
    request_tables,
    requests_from_tables,
)

__all__ = [
    "MIN_CONTRIBUTION",
    "NO_MODEL_MESSAGES",
    "ZH_MESSAGES",
    "Brief",
    "Combiner",
    "NoModelError",
    "RequestColumns",
    "Scored",
    "Scorer",
    "ServedModel",
    "answer_in",
    "answer_tier",
    "answer_tier_by_risk",
    "bento_model_name",
    "import_champions",
    "load_served",
    "message",
    "message_zh",
    "model_info",
    "no_model_message",
    "nothing_to_serve",
    "reasons",
    "request_columns",
    "request_tables",
    "requests_from_tables",
    "save_served",
    "score_combiner",
    "served_models",
    "stages_without_champion",
    "stored_model",
    "stored_request_columns",
    "trusted_stored_request",
]
