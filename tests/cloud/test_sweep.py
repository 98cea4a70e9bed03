"""Sweeps on images the tests make: the options, the grid, a sweep in one process and one in
worker processes, each checked through what it writes (bundles, table, chart, HParams, JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli import main
from cloud.retrain.config import RetrainConfig
from cloud.sweep import grid
from cloud.sweep.config import SWEPT, SweepConfig
from cloud.sweep.sweep import sweep
from common import bundle
from common.errors import ConfigError
from common.options import build, read_yaml
from tests.support.charts import assert_real_chart
from tests.support.cli import as_flags, run_cli
from tests.support.data import TINY_ARCHITECTURE

NO_GPU = "no GPU here"


def sweep_flags(tiny_flags: dict[str, object], **swept: str) -> dict[str, object]:
    return {**tiny_flags, "edge_frames": 10, **swept}


def hparams(session_dir: Path) -> dict[str, object]:
    """The HParams TensorBoard's dashboard reads for one run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    acc = EventAccumulator(str(session_dir))
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
    info = metadata.parse_session_start_info_plugin_data(content)
    return {key: getattr(value, value.WhichOneof("kind")) for key, value in info.hparams.items()}


def test_options_come_from_the_retrainer_with_lists_for_the_swept_ones(tiny_images: Path) -> None:
    assert set(RetrainConfig.model_fields) - {"output_dir", "summaries_dir"} <= set(SweepConfig.model_fields)
    cfg = build(SweepConfig, {"image_dir": tiny_images, "learning-rate": "0.005, 0.01,1.0", "device": "cpu,gpu"})
    assert cfg.learning_rate == [0.005, 0.01, 1.0]
    assert cfg.architecture == [RetrainConfig.model_fields["architecture"].default]
    assert cfg.varying == ["learning_rate", "device"]
    assert all(isinstance(getattr(cfg, name), list) for name in SWEPT)
    with pytest.raises(ConfigError, match=r"learning-rate\.1: Input should be greater than 0"):
        build(SweepConfig, {"image_dir": tiny_images, "learning_rate": "0.1,0"})
    with pytest.raises(ConfigError, match="learning-rat: Extra inputs are not permitted"):
        build(SweepConfig, {"image_dir": tiny_images, "learning_rat": "0.1"})
    with pytest.raises(ConfigError, match="unknown backend"):
        build(SweepConfig, {"image_dir": tiny_images, "edge_backends": "tflite,onxx"})


def test_grid_names_runs_by_what_varies_and_samples_with_the_seed(tiny_images: Path, tmp_path: Path) -> None:
    options = {
        "image_dir": tiny_images,
        "output_dir": tmp_path,
        "architecture": "mobilenet_0.25_128,mobilenet_0.50_160",
    }
    runs = grid.expand(build(SweepConfig, options, {"learning_rate": "0.1,0.5,1"}))
    assert [r.name for r in runs][:3] == [
        "mobilenet_0.25_128-lr0.1",
        "mobilenet_0.25_128-lr0.5",
        "mobilenet_0.25_128-lr1.0",
    ]
    assert runs[4].config.output_dir == tmp_path / "runs" / "mobilenet_0.50_160-lr0.5"
    assert runs[4].config.summaries_dir == tmp_path / "logs" / "mobilenet_0.50_160-lr0.5"
    first, rest = grid.waves(runs)
    assert [r.name for r in first] == ["mobilenet_0.25_128-lr0.1", "mobilenet_0.50_160-lr0.1"]
    assert len(rest) == 4

    def sample() -> list[str]:
        return [r.name for r in grid.expand(build(SweepConfig, options, {"learning_rate": "0.1,0.5,1", "max_runs": 4}))]

    assert len(set(sample())) == 4
    assert sample() == sample(), "the same seed samples the same runs"

    with pytest.raises(ConfigError, match="validation-percentage"):
        grid.expand(build(SweepConfig, options, {"validation_percentage": 60, "testing_percentage": 40}))


@pytest.mark.slow  # a sweep of several trainings
def test_in_process_sweep_shares_bottlenecks_and_reports_gpu_runs_without_a_gpu(
    tiny_images: Path, tiny_flags: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    flags = sweep_flags(tiny_flags, learning_rate="0.02,0.5", device="cpu,gpu")
    argv = ["sweep", *as_flags(flags), "--image-dir", str(tiny_images), "--bottleneck-dir", str(tmp_path / "bn")]
    assert main([*argv, "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best: " in printed

    result = json.loads((out / "sweep.json").read_text())
    rows = {r["name"]: r for r in result["runs"]}
    assert set(rows) == {"lr0.02-cpu", "lr0.5-cpu", "lr0.02-gpu", "lr0.5-gpu"}
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        assert [r["name"].endswith("gpu") for r in result["runs"]] == [False, False, True, True], "failed runs last"
        for name in ("lr0.02-gpu", "lr0.5-gpu"):
            assert rows[name]["error"].startswith(NO_GPU)
            assert rows[name]["bundle"] is None
            assert not (out / "runs" / name).exists()
    cpu = [rows["lr0.02-cpu"], rows["lr0.5-cpu"]]
    assert sorted(r["bottlenecks_computed"] for r in cpu) == [0, 120], "the second cpu run computes none"
    assert {r["bottlenecks_cached"] + r["bottlenecks_computed"] for r in cpu} == {120}
    for r in cpu:
        assert r["error"] is None
        assert r["test_accuracy"] > 0.4
        assert r["train_s"] > 0
        assert r["images_per_s"] > 0
        assert r["tflite_bytes"] == (Path(r["bundle"]) / "model.tflite").stat().st_size
        assert set(r["edge_ms"]) == {"tflite", "tf"}
        assert all(ms > 0 for ms in r["edge_ms"].values())
        assert bundle.load(Path(r["bundle"])).meta.training["learning_rate"] == r["params"]["learning_rate"]
        assert hparams(out / "logs" / r["name"]) == {
            "architecture": TINY_ARCHITECTURE,
            "learning_rate": r["params"]["learning_rate"],
            "how_many_training_steps": 150,
            "train_batch_size": 32,
            "fine_tune_layers": 0,
            "device": "cpu",
        }
        assert (out / "logs" / r["name"] / "validation").is_dir()
        repeat = build(RetrainConfig, read_yaml(out / "runs" / f"{r['name']}.yaml"))
        assert repeat.learning_rate == r["params"]["learning_rate"]

    best = result["best"]
    assert best["name"] == result["runs"][0]["name"]
    assert (out / "best").resolve() == Path(best["bundle"]).resolve()
    assert bundle.load(out / "best").meta.metrics.validation_accuracy == result["runs"][0]["validation_accuracy"]
    table = (out / "sweep.md").read_text().splitlines()
    assert table[0].startswith("| # | run | learning-rate | device | test acc | val acc |")
    assert len(table) == 2 + 4
    assert_real_chart(out / "sweep.png")


@pytest.mark.slow  # trainings in worker processes
def test_worker_processes_share_the_cache_and_a_misfit_fails_alone(
    tiny_images: Path, tiny_flags: dict[str, object], tmp_path: Path
) -> None:
    flags = sweep_flags(tiny_flags, architecture=f"{TINY_ARCHITECTURE},mobilenet_1.0_128", learning_rate="0.1,0.5")
    args = [*as_flags(flags), "--image-dir", tiny_images, "--bottleneck-dir", tmp_path / "bn", "--jobs", 2]
    result = json.loads(run_cli("cloud", "sweep", *args, "--output-dir", tmp_path / "s", "--json").stdout)
    rows = {r["name"]: r for r in result["runs"]}
    fits = [rows[f"{TINY_ARCHITECTURE}-lr0.1"], rows[f"{TINY_ARCHITECTURE}-lr0.5"]]
    assert sorted(r["bottlenecks_computed"] for r in fits) == [0, 120], "computed by one worker, read by the other"
    for name in ("mobilenet_1.0_128-lr0.1", "mobilenet_1.0_128-lr0.5"):
        assert "does not fit architecture mobilenet_1.0_128" in rows[name]["error"]
        assert rows[name]["error"] in (tmp_path / "s" / "runs" / f"{name}.log").read_text(), "the worker's own words"
    assert result["best"]["name"] in {r["name"] for r in fits}
    assert_real_chart(Path(result["chart"]))


def test_every_run_failing_exits_1_with_the_table(
    tiny_images: Path, tiny_weights: Path, tmp_path: Path, capsys
) -> None:
    argv = [
        "sweep",
        "--image-dir",
        str(tiny_images),
        "--architecture",
        "mobilenet_1.0_128",
        "--weights",
        str(tiny_weights),
    ]
    assert main([*argv, "--device", "gpu,cpu", "--output-dir", str(tmp_path / "s")]) == 1
    printed = capsys.readouterr().out
    assert "best: none, every run failed" in printed
    assert NO_GPU in printed
    assert "does not fit architecture mobilenet_1.0_128" in printed
    assert_real_chart(tmp_path / "s" / "sweep.png")
    assert not (tmp_path / "s" / "best").exists()


def test_refuses_a_folder_that_is_not_a_sweep(tiny_images: Path, tiny_flags, tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    cfg = build(SweepConfig, sweep_flags(tiny_flags), {"image_dir": tiny_images, "output_dir": tmp_path})
    with pytest.raises(Exception, match="is not a sweep's folder; refusing"):
        sweep(cfg)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
