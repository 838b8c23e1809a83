"""The composition root: the only place that knows every concrete class.

`run()` opens the state, builds the core, starts the channels (the console when no chat token is
configured), tells users about work a crash interrupted, and runs until a signal or until every
channel has finished.

(Over 400 lines: it is the one module that wires every concrete part together, by design; each
part it builds lives in its own module.)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from datetime import timedelta
from typing import TextIO

from agent.approvals import ApprovalService
from agent.config import ConfigError, Settings
from agent.context import ContextBuilder, GoalsSource, MemorySource
from agent.core import Steward
from agent.delivery import Courier, private_address
from agent.mail.setup import build_mail, mail_configured
from agent.mcp import build_mcp, mcp_configured
from agent.memory_service import MemoryConfig, MemoryService
from agent.model import AnthropicModel, warm_up
from agent.model_timing import TimedModel
from agent.outbox import Switchboard
from agent.paths import LOG_FILE, DataDirLock
from agent.policy import PolicyEngine, load_policy
from agent.policy_lint import rules_matching_nothing
from agent.sandbox import Sandbox
from agent.scheduler import SchedulerService
from agent.scheduler.default_zone import follow_default_timezone
from agent.tools import ToolDeps, default_registry
from agent.turn import TurnRunner
from bot.channel_start import start_channels, stop_starting
from bot.channels import Channel
from bot.channels.console import CONSOLE_ADDRESS, CONSOLE_IDENTITY, ConsoleChannel
from bot.commands import CommandGroup, build_commands
from bot.commands.access import apply_allowlists, apply_owner_settings
from bot.gc_pauses import freeze_when_settled
from bot.heap_trim import trim_periodically
from bot.http import HttpServer
from bot.lifecycle import (
    close_to_others,
    expire_approvals,
    stop_signals,
    until_done,
    watch_data_dir,
)
from bot.recovery import (
    recover_interrupted,
    resume_decided,
    send_restart_notes,
    show_unshown_cards,
)
from bot.router import Router
from bot.web.serve import console_starting, start_console
from bot.workers import started_executor
from memory.clock import Clock, SystemClock
from memory.labels import TRUSTED
from memory.state import StateStore
from memory.stores import Stores

__all__ = ["build_steward", "run"]

log = logging.getLogger(__name__)

_WARM_UP_WAIT = 15.0  # s: an SDK import or turns slower than this no longer hold the rest back


async def build_steward(settings: Settings, stores: Stores, clock: Clock) -> Steward:
    tools = default_registry(mail=mail_configured(settings))
    model = None
    if settings.anthropic_api_key is not None:
        model = AnthropicModel(
            api_key=settings.anthropic_api_key.get_secret_value(),
            model=settings.model,
            base_url=settings.anthropic_base_url,
            max_tokens=settings.max_tokens,
            max_retries=settings.model_retries,
            timeout=settings.model_timeout,
        )
        model = TimedModel(model, stores.model_calls)  # type: ignore[assignment]  # latency
    memory_model = _memory_model(settings, model)
    memory = MemoryService(
        stores=stores,
        clock=clock,
        model=memory_model,
        owns_model=memory_model is not model,
        config=MemoryConfig(
            embedder=settings.embedder,
            embedder_dir=settings.embedder_dir,
            embedder_idle=settings.embedder_idle or None,
            chroma_path=settings.chroma_path,
            chroma_url=settings.chroma_url,
            context_tokens=settings.memory_tokens,
            history_tokens=settings.history_tokens,
            timezone=settings.timezone,
            weights=settings.memory_ranking,
            workspace=settings.workspace,
        ),
    )
    context = ContextBuilder(
        stores,
        clock,
        default_timezone=settings.timezone,
        history_tokens=settings.history_tokens,
        sources=[
            GoalsSource(stores, settings.timezone),
            MemorySource(memory, token_budget=settings.memory_tokens),
        ],
        history_floor=memory.history_floor,
        corrections=memory.correction_notes,
    )
    outbox = Switchboard()
    sandbox = Sandbox(
        workspace=settings.workspace,
        shell_timeout=settings.shell_timeout,
        output_limit=settings.tool_output_limit,
        fetch_allow_hosts=settings.fetch_allow_hosts,
        fetch_max_bytes=settings.fetch_max_bytes,
        fetch_timeout=settings.fetch_timeout,
        shell_unconfined=settings.shell_unconfined,
    )
    courier = Courier(stores, outbox)
    scheduler = SchedulerService(
        settings=settings, stores=stores, clock=clock, sender=courier, memory=memory
    )
    mail = build_mail(settings, stores, clock, courier, scheduler)  # None: no mailbox
    deps = ToolDeps(
        stores=stores,
        clock=clock,
        timezone=settings.timezone,
        outbox=outbox,
        sandbox=sandbox,
        scheduler=scheduler,
        memory=memory,
        mail=mail.service if mail else None,
    )
    policy = PolicyEngine(
        load_policy(settings.policy_path),
        stores.people,
        settings.policy_path,
        confined=sandbox.confined,
    )
    mcp = None
    if mcp_configured(settings):  # else the MCP SDK is never imported
        mcp, mcp_tools = build_mcp(
            settings, lambda name: policy.policy.risk_for(name), stores.audit
        )
        tools.add_source(mcp_tools)  # MCP tools come and go; built-ins are found first
    names = [tool.name for tool in tools] + ([] if mail else ["mail_*"])
    servers = [s.name for s in mcp.config.servers] + list(mcp.config.disabled) if mcp else []
    for problem in rules_matching_nothing(policy.policy, names, servers):
        log.warning("%s: %s", settings.policy_path, problem)
    approvals = ApprovalService(
        stores,
        tools,
        expiry=timedelta(minutes=settings.approval_minutes),
        approvers=frozenset(settings.approvers),
        per_minute=settings.approvals_per_minute,
        policy=policy,
    )
    runner = TurnRunner(
        deps=deps,
        model=model,
        tools=tools,
        policy=policy,
        context=context,
        max_steps=settings.max_steps,
        daily_token_budget=settings.daily_token_budget,
        approvals=approvals,
        guest_daily_tokens=settings.guest_daily_tokens,
    )
    steward = Steward(
        settings=settings,
        stores=stores,
        clock=clock,
        runner=runner,
        courier=courier,
        tools=tools,
        started_at=clock.now(),
        approvals=approvals,
        policy=policy,
        scheduler=scheduler,
        memory=memory,
    )
    steward.mcp = mcp
    steward.mail = mail
    memory.yield_to(steward.sequencer.in_flight)  # vectors behind the turns: replies first
    scheduler.attach(steward)  # as its `Responder`: the turns it starts go through the core
    scheduler.set_interest_source(memory)
    await follow_default_timezone(scheduler)  # a new STEWARD_TIMEZONE, before anything fires
    return steward


def _memory_model(settings: Settings, model: AnthropicModel | None) -> AnthropicModel | None:
    """The model for memory upkeep (extraction, compaction): STEWARD_MEMORY_MODEL if set."""
    if model is None or not settings.memory_model or settings.anthropic_api_key is None:
        return model
    return AnthropicModel(
        api_key=settings.anthropic_api_key.get_secret_value(),
        model=settings.memory_model,
        base_url=settings.anthropic_base_url,
        max_tokens=settings.max_tokens,
        max_retries=settings.model_retries,
        timeout=settings.model_timeout,
    )


async def build_channels(
    settings: Settings,
    stdin: TextIO | None,
    stdout: TextIO | None,
    *,
    state: StateStore | None = None,
    commands: CommandGroup | None = None,
    http: HttpServer | None = None,
) -> list[Channel]:
    """Every configured chat channel, or the console when none is. Each channel's module (and
    slack-bolt) is imported in a worker thread and only when that channel is configured."""
    wanted = [
        name
        for name, token in (
            ("telegram", settings.telegram_bot_token),
            ("slack", settings.slack_bot_token),
        )
        if token is not None
    ]
    modules = await asyncio.gather(
        *(asyncio.to_thread(importlib.import_module, f"bot.channels.{name}") for name in wanted)
    )
    loaded = dict(zip(wanted, modules, strict=True))
    http = http or HttpServer(settings.http_host, settings.http_port)
    channels: list[Channel] = []
    if settings.telegram_bot_token is not None:
        secret = settings.telegram_webhook_secret
        channels.append(
            loaded["telegram"].TelegramChannel(
                token=settings.telegram_bot_token.get_secret_value(),
                api_base=settings.telegram_api_base,
                commands=[(c.name, c.summary) for c in commands or ()],
                state=state,
                webhook_url=settings.telegram_webhook_url,
                webhook_secret=secret.get_secret_value() if secret else None,
                http=http,
            )
        )
    if settings.slack_bot_token is not None:
        app_token, signing = settings.slack_app_token, settings.slack_signing_secret
        channels.append(
            loaded["slack"].SlackChannel(
                bot_token=settings.slack_bot_token.get_secret_value(),
                app_token=app_token.get_secret_value() if app_token else None,
                signing_secret=signing.get_secret_value() if signing else None,
                api_url=settings.slack_api_url,
                http=http,
            )
        )
    if not channels:
        channels.append(ConsoleChannel(stdin, stdout, log_file=settings.data_dir / LOG_FILE))
    return channels


async def run(
    settings: Settings,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    clock: Clock | None = None,
) -> int:
    with stop_signals() as stop:
        return await _run(settings, stop, stdin=stdin, stdout=stdout, clock=clock or SystemClock())


CHANNEL_NAMES = ("telegram", "slack", "console")
"""The channels `steward run` can start; an identity on any other names nobody."""


def _check_identity_channels(settings: Settings) -> None:
    """`telgram:123` in STEWARD_OWNER parses, and then no message is ever the owner's."""
    for name, identities in (
        ("STEWARD_OWNER", settings.owner),
        ("STEWARD_APPROVERS", settings.approvers),
    ):
        for number, identity in enumerate(identities, 1):
            if identity.channel not in CHANNEL_NAMES:  # named by number: it may be a pasted key
                raise ConfigError(
                    f"{name}: entry {number} has an unknown channel "
                    f"(use {', '.join(CHANNEL_NAMES[:2])}, e.g. telegram:123456789)"
                )


async def _run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    stdin: TextIO | None,
    stdout: TextIO | None,
    clock: Clock,
) -> int:
    _check_identity_channels(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    close_to_others(settings.data_dir)
    # to_thread's pool at its full size from the start (bot/workers.py: no thread added later)
    asyncio.get_running_loop().set_default_executor(started_executor())
    lock = DataDirLock(settings.data_dir).acquire()  # one Steward per data directory
    try:
        stores = await Stores.open(settings.database_path, clock)
    except BaseException:
        lock.release()
        raise
    warm: asyncio.Task[None] | None = None
    try:
        await apply_owner_settings(stores, [CONSOLE_IDENTITY, *settings.owner])
        await apply_allowlists(
            stores, [*settings.telegram_allowed_users, *settings.slack_allowed_users]
        )
        steward = await build_steward(settings, stores, clock)
        notes = await recover_interrupted(steward)
        backlog = await steward.courier.backlog()  # before anything new is on its way
        await console_starting(steward)  # /web waits for this run's console, not the last's
        commands = build_commands()
        router = Router(steward, commands)
        http = HttpServer(settings.http_host, settings.http_port)
        channels = await build_channels(
            settings, stdin, stdout, state=stores.state, commands=commands, http=http
        )
        channels = await start_channels(steward, router, channels)
        if not channels:
            log.error("no channel could start; stopping")
            await http.stop()
            return 1
        log.info("data directory: %s", settings.data_dir.absolute())
        # the journal keeps where the audit log stood at each start: outside the data directory
        log.info("audit log at start: %s", await stores.audit.anchor())
        up = [c.name for c in channels if c.name in steward.switchboard.channels]
        coming = [c.name for c in channels if c.name not in up]
        log.info(
            "Steward is up: %s%s",
            ", ".join(up) or "no channel yet",
            f" ({', '.join(coming)} starting in the background)" if coming else "",
        )
        # The SDK import (1.3 s of CPU) starts once the channels are up: started earlier, in a
        # thread, it shares the interpreter (one GIL) with the start-up and made the first poll
        # later without making the first reply sooner (bench/startup.py, issue 19)
        if settings.anthropic_api_key:
            warm = asyncio.create_task(warm_up())
        web_console = asyncio.create_task(_after_warm_up(warm, steward, http, channels))
        await _start_mcp(steward, channels)  # in the background: never delays the channels
        await steward.courier.redeliver(only=backlog)
        redelivery = asyncio.create_task(steward.courier.keep_redelivering())
        await send_restart_notes(steward, notes)
        await show_unshown_cards(steward)
        resuming = asyncio.create_task(resume_decided(steward), name="resume-decided")
        sweeper = asyncio.create_task(expire_approvals(steward))
        sequencer = steward.sequencer
        trimmer = asyncio.create_task(trim_periodically(sequencer.quiet, lambda: sequencer.taken))
        scheduler = steward.scheduler
        assert isinstance(scheduler, SchedulerService)
        await scheduler.start()
        if steward.mail is not None and steward.mail.service.account.imap is not None:
            steward.mail.start()  # IDLE or polling; a refused login is retried with backoff
        watch = asyncio.create_task(watch_data_dir(lock, stop, each=scheduler.check_clock))
        await until_done(channels, stop)
        lost = watch.done() and not watch.cancelled() and not watch.exception() and watch.result()
        watch.cancel()
        web_console.cancel()  # if it is still starting
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await web_console
        await scheduler.stop()
        sweeper.cancel()
        trimmer.cancel()
        redelivery.cancel()
        resuming.cancel()
        await stop_starting()
        for channel in channels:
            await channel.stop()
        await http.stop()
        await steward.aclose()
        return 1 if lost else 0
    finally:
        if warm is not None:
            with contextlib.suppress(Exception):
                await warm
        await stores.close()
        lock.release()


async def _after_warm_up(
    warm: asyncio.Task[None] | None, steward: Steward, http: HttpServer, channels: list[Channel]
) -> object:
    """What the first reply does not need starts once the SDK is imported and the turns that
    came in meanwhile (messages waiting at start) have answered: the first reply waits for that
    import, and these would share the interpreter (one GIL) with it and with those turns. The
    embedder and Chroma (keyword search serves until they are up), then the web console; after
    `_WARM_UP_WAIT` at most. Its result: the console."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _WARM_UP_WAIT
    if warm is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(warm), _WARM_UP_WAIT)
    with contextlib.suppress(TimeoutError):  # replies first (bench/startup.py, issue 19)
        await asyncio.wait_for(steward.sequencer.quiet(), max(0.0, give_up - loop.time()))
    assert steward.memory is not None
    await steward.memory.start()  # the embedder and Chroma load in the background
    console = await start_console(steward, http, channels)  # bot/web
    # the start-up heap out of the collector's walks once memory is up and no turn runs
    await freeze_when_settled(steward.memory.wait_ready, steward.sequencer.quiet)
    return console


async def _start_mcp(steward: Steward, channels: list[Channel]) -> None:
    """Start the MCP servers in the background; an outage is told to the owner once, privately,
    by Steward (out of the model's history)."""
    if steward.mcp is None:
        return
    reach = [c.name for c in channels]

    async def tell_owner(text: str) -> bool:
        owner = await steward.stores.people.owner()
        found = await private_address(steward.stores, owner.id, reach) if owner else None
        if found is None and CONSOLE_ADDRESS.channel in reach:  # a first run on the console
            chat = await steward.stores.people.chat(
                CONSOLE_ADDRESS.channel, CONSOLE_ADDRESS.chat_id, "private"
            )
            found = CONSOLE_ADDRESS, chat
        if found is None:
            return False  # told at the next failed start, once the owner can be reached
        address, chat = found
        await steward.courier.send(address, chat.id, text, in_history=False, label=TRUSTED)
        return True

    await steward.mcp.start(notify=tell_owner)
