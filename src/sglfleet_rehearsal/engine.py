"""`python -m sglfleet_rehearsal --config FILE`: parse like SGLang, check weights, form the group,
serve, drain on SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from types import FrameType

import yaml

from sglfleet_rehearsal.group import Coordinator, Member, Timing
from sglfleet_rehearsal.http_api import SECRET_FIELDS, EngineState, RehearsalServer
from sglfleet_rehearsal.metrics import Metrics
from sglfleet_rehearsal.weights import ModelCheckError, check_model_path
from sglfleet_sglang import SGLANG_VERSION
from sglfleet_sglang.catalog import build_parser, load_catalog
from sglfleet_sglang.config_file import ConfigFileError, merge_config_with_args

logger = logging.getLogger("sglfleet_rehearsal")

PROG = "sglfleet_rehearsal"
# Stand-in for the KV pool size SGLang reports; only token_usage's ratio depends on it.
REHEARSAL_KV_TOKENS = 1_000_000


@dataclass(frozen=True)
class Knobs:
    """Environment settings (documented in docs/rehearsal-engine.md)."""

    token_delay_s: float
    load_seconds: float
    drain_timeout_s: float
    member_sigterm: str
    timing: Timing

    @staticmethod
    def from_env(env: dict[str, str]) -> Knobs:
        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError as error:
                raise ValueError(f"{name}={raw!r} is not a number") from error
            if value < 0:
                raise ValueError(f"{name}={raw!r} must not be negative")
            return value

        member_sigterm = env.get("SGLFLEET_REHEARSAL_MEMBER_SIGTERM", "wait")
        if member_sigterm not in ("wait", "exit"):
            raise ValueError("SGLFLEET_REHEARSAL_MEMBER_SIGTERM must be wait or exit")
        return Knobs(
            token_delay_s=number("SGLFLEET_REHEARSAL_TOKEN_DELAY_S", 0.02),
            load_seconds=number("SGLFLEET_REHEARSAL_LOAD_SECONDS", 3.0),
            drain_timeout_s=number("SGLFLEET_REHEARSAL_DRAIN_TIMEOUT_S", 60.0),
            member_sigterm=member_sigterm,
            timing=Timing(
                heartbeat_s=number("SGLFLEET_REHEARSAL_HEARTBEAT_S", 1.0),
                heartbeat_timeout_s=number("SGLFLEET_REHEARSAL_HEARTBEAT_TIMEOUT_S", 10.0),
                join_timeout_s=number("SGLFLEET_REHEARSAL_JOIN_TIMEOUT_S", 600.0),
            ),
        )


def fatal(message: str) -> None:
    """A group member is gone: log why and exit non-zero at once, as SGLang's ranks do."""
    logger.error("%s", message)
    for handler in logging.getLogger().handlers + logger.handlers:
        handler.flush()
    os._exit(1)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """SGLang's prepare_server_args: merge --config FILE, then parse with SGLang's flags."""
    catalog = load_catalog()
    parser = build_parser(catalog, prog=PROG)
    try:
        merged = merge_config_with_args(argv, catalog)
    except (ConfigFileError, yaml.YAMLError, OSError) as error:
        parser.error(f"--config: {error}")
    return parser.parse_args(merged)


def _describe(args: argparse.Namespace) -> str:
    """The non-default arguments, secrets redacted, for the journal."""
    defaults = {flag.dest: flag.default for flag in load_catalog().flags}
    shown = []
    for key, value in sorted(vars(args).items()):
        if key == "config" or value == defaults.get(key):
            continue
        shown.append(f"{key}={'<redacted>' if key in SECRET_FIELDS else value!r}")
    return ", ".join(shown)


class Engine:
    def __init__(self, args: argparse.Namespace, knobs: Knobs) -> None:
        self.args = args
        self.knobs = knobs
        self.stop = threading.Event()
        self.multi_node = args.nnodes > 1

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self.args.node_rank >= 1 and self.knobs.member_sigterm == "wait" and self._joined:
            logger.warning(
                "SIGTERM received on node_rank %d; waiting for the rank-0 shutdown broadcast"
                " (stop rank 0 first, as with SGLang)",
                self.args.node_rank,
            )
            return
        logger.info("SIGTERM received. Draining requests and shutting down...")
        self.stop.set()

    _joined = False

    def run(self) -> int:
        args = self.args
        if args.nnodes < 1 or not 0 <= args.node_rank < args.nnodes:
            logger.error("--node-rank %d must be in 0..%d", args.node_rank, args.nnodes - 1)
            return 1
        if self.multi_node and not args.dist_init_addr:
            logger.error("--nnodes %d needs --dist-init-addr HOST:PORT of rank 0", args.nnodes)
            return 1
        try:
            model = check_model_path(args.model_path, load_format=args.load_format)
        except ModelCheckError as error:
            logger.error("Error: cannot load the model: %s", error)
            return 1
        logger.info(
            "model %s: %d safetensors file(s), %d tensors, %.1f GB (headers checked; no weights"
            " are loaded)",
            model.path,
            model.safetensors_files,
            model.tensors,
            model.weight_bytes / 1e9,
        )
        engine_type = {"prefill": "prefill", "decode": "decode"}.get(
            args.disaggregation_mode, "unified"
        )
        metrics = Metrics(
            model_name=str(args.served_model_name or args.model_path),
            engine_type=engine_type,
            max_total_num_tokens=REHEARSAL_KV_TOKENS,
        )
        state = EngineState(
            args=args,
            model=model,
            metrics=metrics,
            token_delay_s=self.knobs.token_delay_s,
            full_api=args.node_rank == 0,
        )
        if args.node_rank == 0:
            return self._run_rank0(state)
        return self._run_member(state)

    def _serve(self, state: EngineState) -> RehearsalServer | None:
        try:
            server = RehearsalServer((self.args.host, self.args.port), state)
        except OSError as error:
            logger.error("cannot listen on %s:%d: %s", self.args.host, self.args.port, error)
            return None
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        return server

    def _run_rank0(self, state: EngineState) -> int:
        server = self._serve(state)
        if server is None:
            return 1
        logger.info(
            "rehearsal engine (SGLang %s stand-in) listening on http://%s:%d; loading",
            SGLANG_VERSION,
            self.args.host,
            self.args.port,
        )
        coordinator = None
        if self.multi_node:
            coordinator = Coordinator(
                self.args.dist_init_addr, self.args.nnodes, self.knobs.timing, fatal
            )
            try:
                coordinator.start()
            except OSError as error:
                logger.error("cannot listen on --dist-init-addr %s: %s", coordinator.port, error)
                return 1
        if self.stop.wait(self.knobs.load_seconds):
            server.shutdown()
            return 0
        if coordinator is not None:
            formed = threading.Event()
            outcome: list[bool] = []

            def wait() -> None:
                outcome.append(coordinator.wait_formed())
                formed.set()

            threading.Thread(target=wait, name="group-form", daemon=True).start()
            while not formed.wait(0.2):
                if self.stop.is_set():
                    coordinator.shutdown_members()
                    server.shutdown()
                    return 0
            if not outcome[0]:
                fatal(
                    f"only {len(coordinator.loaded)} of {self.args.nnodes - 1} other node(s)"
                    f" joined within {self.knobs.timing.join_timeout_s:.0f}s"
                )
        state.ready.set()
        logger.info("The server is fired up and ready to roll! (rehearsal engine)")
        while not self.stop.wait(0.5):
            pass
        state.draining = True
        server.shutdown()
        server.server_close()
        drained = state.wait_idle(self.knobs.drain_timeout_s)
        if coordinator is not None:
            coordinator.shutdown_members()
        if not drained:
            logger.error("requests still running after %.0fs; exiting", self.knobs.drain_timeout_s)
            return 1
        logger.info("drained; exiting")
        return 0

    def _run_member(self, state: EngineState) -> int:
        member = Member(
            self.args.dist_init_addr,
            self.args.node_rank,
            self.args.nnodes,
            self.knobs.timing,
            fatal,
        )
        member.join()
        self._joined = True
        if self.stop.wait(self.knobs.load_seconds):
            return 0
        member.report_loaded()
        while not member.ready.wait(0.2):
            if member.shutdown.is_set() or self.stop.is_set():
                return 0
        # SGLang starts a dummy health server on non-zero ranks once their schedulers are up.
        state.ready.set()
        server = self._serve(state)
        if server is None:
            return 1
        logger.info(
            "node_rank %d ready; dummy health server on http://%s:%d",
            self.args.node_rank,
            self.args.host,
            self.args.port,
        )
        while not member.shutdown.wait(0.5):
            if self.stop.is_set():
                break
        server.shutdown()
        server.server_close()
        return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="[%(asctime)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.getLogger().setLevel(getattr(logging, str(args.log_level).upper(), logging.INFO))
    try:
        knobs = Knobs.from_env(dict(os.environ))
    except ValueError as error:
        logger.error("Error: %s", error)
        return 1
    logger.info("rehearsal engine for SGLang %s; server args: %s", SGLANG_VERSION, _describe(args))
    engine = Engine(args, knobs)
    signal.signal(signal.SIGTERM, engine.on_sigterm)
    signal.signal(signal.SIGINT, engine.on_sigterm)
    return engine.run()
