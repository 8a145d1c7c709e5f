"""Run the reward server: POST /score (mdrl JSON), POST /get_reward (OpenRLHF), GET /health, GET /domains."""

from __future__ import annotations

import ipaddress

import typer

from mdrl.commands.options import list_options_option, resolve, set_option, spec_option
from mdrl.specs import RewardSpec, ServeConfig, reward_overrides


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str | None = spec_option(ServeConfig, "host"),
    port: int | None = spec_option(ServeConfig, "port"),
    workers: int | None = spec_option(ServeConfig, "workers"),
    code_workers: int | None = spec_option(ServeConfig, "code_workers"),
    http_workers: int | None = spec_option(ServeConfig, "http_workers"),
    max_batch: int | None = spec_option(ServeConfig, "max_batch"),
    max_body_mb: float | None = spec_option(ServeConfig, "max_body_bytes", "--max-body-mb",
                                            note="In MiB here.", show_default="64"),
    chunk_size: int | None = spec_option(ServeConfig, "chunk_size"),
    data_source: str | None = spec_option(ServeConfig, "data_source"),
    reward: str | None = spec_option(RewardSpec, "mode", "--reward", show_default=False,
                                     prefix="For requests that send no reward: "),
    format_weight: float | None = spec_option(RewardSpec, "format_weight", show_default=False,
                                              prefix="For requests that send no reward: "),
    format_reward: float | None = typer.Option(None, "--format-reward", hidden=True,
                                               help="Deprecated spelling of --format-weight."),
    request_timeout: float | None = spec_option(ServeConfig, "request_timeout_s", "--request-timeout"),
    log_level: str | None = spec_option(ServeConfig, "log_level"),
    access_log: bool | None = spec_option(ServeConfig, "access_log", "--access-log/--no-access-log"),
    set_values: list[str] | None = set_option("reward.mode=proportional"),
    list_options: bool = list_options_option(("", ServeConfig)),
) -> None:
    """Run the reward server: POST /score (mdrl JSON), POST /get_reward (OpenRLHF), GET /health, GET /domains."""
    from mdrl.serve import serve as run_server

    try:
        reward_values = reward_overrides(reward, format_weight, format_reward)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    values = {"host": host, "port": port, "workers": workers, "code_workers": code_workers,
              "http_workers": http_workers, "max_batch": max_batch, "chunk_size": chunk_size,
              "max_body_bytes": None if max_body_mb is None else max(1, int(max_body_mb * (1 << 20))),
              "data_source": data_source, "request_timeout_s": request_timeout, "log_level": log_level,
              "access_log": access_log, **{f"reward.{key}": value for key, value in reward_values.items()}}
    config = resolve(ServeConfig, values, set_values)

    def announce(url: str) -> None:
        typer.echo(f"mdrl serve: {url}")
        typer.echo(f"  POST {url}/score       items [{{data_source, solution_str, ground_truth, extra_info?}}]")
        typer.echo(f"  POST {url}/get_reward  OpenRLHF --reward.remote_url {url}/get_reward")
        typer.echo(f"  GET  {url}/health  {url}/domains")
        typer.echo(f"  scoring processes {config.scoring_processes * config.http_workers} "
                   f"(+{config.code_concurrency * config.http_workers} for code), "
                   f"http workers {config.http_workers}, max batch {config.max_batch}, "
                   f"max body {config.max_body_bytes / (1 << 20):g} MiB, "
                   f"default data_source {config.data_source or '-'}, "
                   f"reward {dict(config.reward or {}) or 'per-domain default'}")
        if not _is_loopback(config.host):
            typer.echo(f"  WARNING: bound to {config.host}: anyone who can reach it can use it "
                       "(no authentication).", err=True)

    try:
        run_server(config, on_bound=announce)
    except OSError as exc:
        where = f"{config.host}:{config.port}"
        raise typer.BadParameter(f"cannot bind {where}: {exc.strerror or exc}") from None
