"""The agent's spans, metrics and their Prometheus names, read back from in-memory exporters."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actors.kernel import telemetry
from actors.kernel.telemetry import Settings
from actors.training.agent import DQNAgent
from actors.training.buffer import Batch
from actors.training.instruments import SELECT_ACTION_SPAN, TRAIN_STEP_SPAN
from actors.training.policy import TrainedPlayer
from tests.unit.training.support import small_config


@pytest.fixture
def exporters() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry.configure(settings=Settings(), tracer_provider=provider, metric_readers=[reader])
    return spans, reader


def _batch() -> Batch:
    rng = np.random.default_rng(0)
    marks = rng.integers(0, 4, (16, 36)).astype(np.int8)
    return Batch(
        marks,
        rng.integers(0, 36, 16).astype(np.int64),
        rng.normal(size=16).astype(np.float32),
        marks,
        np.full(16, 0.9, np.float32),
    )


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[object]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[object]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_select_action_spans_carry_bounded_attributes(
    exporters: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    spans, _ = exporters
    agent = DQNAgent(small_config(), agent_id="dqn-small")
    marks = np.zeros((4, 36), np.int8)
    agent.select_actions(marks, 0.123456, np.random.default_rng(0))
    agent.select_actions(marks, 0.0, np.random.default_rng(0))
    selected = [s for s in spans.get_finished_spans() if s.name == SELECT_ACTION_SPAN]
    assert [dict(s.attributes or {}) for s in selected] == [
        {"agent_id": "dqn-small", "policy_mode": "explore", "epsilon": 0.123},
        {"agent_id": "dqn-small", "policy_mode": "exploit", "epsilon": 0.0},
    ]


def test_train_step_spans_carry_the_batch_size(
    exporters: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    spans, _ = exporters
    DQNAgent(small_config(), agent_id="dqn-small").train_step(_batch(), epsilon=0.05)
    (span,) = [s for s in spans.get_finished_spans() if s.name == TRAIN_STEP_SPAN]
    assert dict(span.attributes or {}) == {
        "agent_id": "dqn-small",
        "policy_mode": "explore",
        "epsilon": 0.05,
        "batch_size": 16,
    }


def test_training_and_inference_metrics(
    exporters: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    _, reader = exporters
    agent = DQNAgent(small_config(), agent_id="dqn-small")
    for _ in range(3):
        agent.train_step(_batch())
    agent.select_actions(np.zeros((2, 36), np.int8), 0.5, np.random.default_rng(0))
    player = TrainedPlayer("dqn-small", agent.online)
    player.greedy(np.zeros((1, 36), np.int8), 6, 6)
    found = _metrics(reader)
    (steps,) = found["battleship.agent.training.steps"]
    assert steps.value == 3  # type: ignore[attr-defined]
    (loss,) = found["battleship.agent.training.loss"]
    assert loss.count == 3  # type: ignore[attr-defined]
    (duration,) = found["battleship.agent.training.step.duration"]
    assert duration.count == 3  # type: ignore[attr-defined]
    modes = {
        p.attributes["policy_mode"]: p.count  # type: ignore[attr-defined]
        for p in found["battleship.agent.inference.duration"]
    }
    assert modes == {"explore": 1, "exploit": 1}


def test_prometheus_names_are_the_contracts(
    exporters: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    agent = DQNAgent(small_config())
    agent.train_step(_batch())
    agent.select_actions(np.zeros((1, 36), np.int8), 0.0, np.random.default_rng(0))
    text, _ = telemetry.prometheus_text()
    names = text.decode()
    for name in (
        "battleship_agent_training_steps_total",
        "battleship_agent_inference_duration_seconds_bucket",
        "battleship_agent_training_loss_bucket",
        "battleship_agent_training_step_duration_seconds_bucket",
    ):
        assert name in names, name
