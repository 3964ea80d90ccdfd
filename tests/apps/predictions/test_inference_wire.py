"""Workers mode: a model output crosses the Celery wire with what the desk and the next model read."""
import json

import numpy as np

from apps.predictions.inference import outputs_from_wire, outputs_to_wire
from ml.models.output import ModelOutput


def test_edges_and_timestamps_survive_the_wire():
    out = ModelOutput.from_probs(model_name="cnn", model_version="cnn-market-1", probs=np.array([0.2, 0.3, 0.5]),
                                 hidden=np.ones(4, np.float32), predicted_returns={"60m": 0.001},
                                 metadata={"edge_bps": {"BUY": np.float64(-3.5), "SELL": -18.0}, "horizon_min": 60,
                                           "ts": np.int64(1_723_161_599_000), "q_values": np.array([1.0, 2.0])})
    wire = json.loads(json.dumps(outputs_to_wire({"cnn": out})))  # what Celery's JSON serializer carries
    back = outputs_from_wire(wire)["cnn"]
    assert back.metadata["edge_bps"] == {"BUY": -3.5, "SELL": -18.0} and back.metadata["ts"] == 1_723_161_599_000
    assert back.metadata["q_values"] == [1.0, 2.0] and back.probs == out.probs and back.predicted_returns == {"60m": 0.001}
