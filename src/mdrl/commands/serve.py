"""Run the reward server: POST /score (mdrl JSON), POST /get_reward (OpenRLHF), GET /health, GET /domains."""

from __future__ import annotations

import ipaddress

import typer

from mdrl.specs import RewardSpec, ServeConfig, field_help, reward_overrides


def _help(name: str) -> str:
    return field_help(ServeConfig, name)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help=_help("host")),
    port: int = typer.Option(8000, "--port", help=_help("port")),
    workers: int = typer.Option(0, "--workers", help=_help("workers")),
    code_workers: int = typer.Option(0, "--code-workers", help=_help("code_workers")),
    http_workers: int = typer.Option(1, "--http-workers", help=_help("http_workers")),
    max_batch: int = typer.Option(4096, "--max-batch", help=_help("max_batch")),
    max_body_mb: float = typer.Option(64.0, "--max-body-mb", help=_help("max_body_bytes") + " In MiB here."),
    chunk_size: int = typer.Option(0, "--chunk-size", help=_help("chunk_size")),
    data_source: str | None = typer.Option(None, "--data-source", help=_help("data_source")),
    reward: str | None = typer.Option(None, "--reward", help="For requests that send no reward: "
                                      + field_help(RewardSpec, "mode")),
    format_weight: float | None = typer.Option(None, "--format-weight", help="For requests that send no reward: "
                                               + field_help(RewardSpec, "format_weight")),
    format_reward: float | None = typer.Option(None, "--format-reward", hidden=True,
                                               help="Deprecated spelling of --format-weight."),
    request_timeout: float = typer.Option(600.0, "--request-timeout", help=_help("request_timeout_s")),
    log_level: str = typer.Option("warning", "--log-level", help=_help("log_level")),
    access_log: bool = typer.Option(False, "--access-log", help=_help("access_log")),
) -> None:
    """Run the reward server: POST /score (mdrl JSON), POST /get_reward (OpenRLHF), GET /health, GET /domains."""
    from mdrl.serve import serve as run_server

    try:
        overrides = reward_overrides(reward, format_weight, format_reward)
        config = ServeConfig(host=host, port=port, workers=workers, code_workers=code_workers,
                             http_workers=http_workers, max_batch=max_batch,
                             max_body_bytes=max(1, int(max_body_mb * (1 << 20))), chunk_size=chunk_size,
                             data_source=data_source, reward=overrides or None,
                             request_timeout_s=request_timeout, log_level=log_level, access_log=access_log)
    except (KeyError, ValueError) as exc:
        raise typer.BadParameter(str(exc.args[0] if exc.args else exc)) from None

    def announce(url: str) -> None:
        typer.echo(f"mdrl serve: {url}")
        typer.echo(f"  POST {url}/score       items [{{data_source, solution_str, ground_truth, extra_info?}}]")
        typer.echo(f"  POST {url}/get_reward  OpenRLHF --reward.remote_url {url}/get_reward")
        typer.echo(f"  GET  {url}/health  {url}/domains")
        typer.echo(f"  scoring processes {config.scoring_processes * config.http_workers} "
                   f"(+{config.code_concurrency * config.http_workers} for code), http workers {http_workers}, "
                   f"max batch {max_batch}, max body {max_body_mb:g} MiB, "
                   f"default data_source {data_source or '-'}, reward {overrides or 'per-domain default'}")
        if not _is_loopback(host):
            typer.echo(f"  WARNING: bound to {host}: anyone who can reach it can use it (no authentication).",
                       err=True)

    try:
        run_server(config, on_bound=announce)
    except OSError as exc:
        raise typer.BadParameter(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
