"""`python -m crm …`: the command-line contract that scripts and cron jobs rely on."""
import argparse
import getpass
import json
import sys
import time
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from crm.config import get_settings
from crm.db import get_engine, read_scope, session_scope
from crm.errors import CRMError, from_pydantic
from crm.models import Contact, Role, Team, UserCreate, UserUpdate
from crm.schema import has_schema, seed_reference_data, upgrade_schema


def cmd_init(args: argparse.Namespace) -> None:
    engine = get_engine()
    upgrade_schema(engine)
    from crm.lead_rules import seed_default_rules

    with session_scope(engine) as session:
        seeded = seed_reference_data(session)
        seeded = bool(seed_default_rules(session=session)) or seeded
    print(f"Database ready: {engine.url.render_as_string(hide_password=True)}"
          + (" (reference data seeded)" if seeded else ""))


def cmd_demo(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from crm.demo import generate_demo

    cmd_init(args)
    engine = get_engine()
    with read_scope(engine) as session:
        has_contacts = session.exec(select(func.count()).select_from(Contact)).one() > 0
    if has_contacts and args.if_empty:
        print("The database already has contacts; demo data not added.")
        return
    bars: dict[str, tqdm] = {}

    def progress(step: str, done: int, total: int) -> None:
        bar = bars.get(step) or bars.setdefault(step, tqdm(total=total, desc=step, unit="rows", leave=False))
        bar.update(done - bar.n)

    summary = generate_demo(engine, size=args.size, seed=args.seed, progress=progress)
    for bar in bars.values():
        bar.close()
    print(json.dumps(summary, indent=2, default=str))


def _read_password(confirm: bool) -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Again: ") != password:
            raise CRMError("the two passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _team_id(session, name: str | None) -> int | None:
    if not name:
        return None
    team = session.exec(select(Team).where(func.lower(Team.name) == name.lower())).first()
    if team is None:
        raise CRMError(f"no team called {name!r}; teams: "
                       + (", ".join(session.exec(select(Team.name)).all()) or "none yet"))
    return team.id


def cmd_reindex(args: argparse.Namespace) -> None:
    from crm.search import rebuild_search_index

    with session_scope() as session:
        written = rebuild_search_index(session.connection())
    print(f"Search index rebuilt: {written} tokens.")


def cmd_forecast_snapshot(args: argparse.Namespace) -> None:
    """The nightly job: today's forecast snapshot (replacing one taken earlier today) and fresh stage durations."""
    from crm.forecast import take_snapshot
    from crm.stage_stats import refresh_stage_stats

    with session_scope() as session:
        rows = take_snapshot(session=session)
        stats = refresh_stage_stats(session=session)
    print(f"Forecast snapshot stored: {rows} rows; stage durations refreshed: {len(stats)} rows.")


def cmd_kpis_rebuild(args: argparse.Namespace) -> None:
    """Recompute the KPI cube from the base tables (it is kept up to date on every write; this is for repairs and
    databases filled behind the application's back)."""
    from crm.kpis import cube

    started = time.perf_counter()
    with session_scope() as session:
        built = cube.rebuild(session)
    print(f"KPI cube rebuilt: {built['cube_rows']:,} rows, "
          f"{time.perf_counter() - started:.1f} s.")


def cmd_automations_run(args: argparse.Namespace) -> None:
    """The cron job of the time triggers (idle deals, dates N days away, tickets open N hours); JSON to stdout."""
    from crm.automations.runner import run_automations

    print(json.dumps(run_automations(get_engine()), indent=2, default=str))


def cmd_hygiene_find_duplicates(args: argparse.Namespace) -> None:
    """Scan for duplicate contacts and companies and store the pairs the data-hygiene page lists; JSON to stdout."""
    from crm.hygiene.duplicates import scan_duplicates

    with read_scope() as session:
        actor = _acting(session, args.as_email)
    entities = ("contact", "company") if args.entity == "all" else (args.entity,)
    summaries = [scan_duplicates(engine=get_engine(), actor=actor, entity=entity, min_score=args.min_score)
                 for entity in entities]
    print(json.dumps([s.model_dump(mode="json") for s in summaries], indent=2))


def cmd_train(args: argparse.Namespace) -> None:
    """Train, evaluate, register and promote one model; the JSON summary goes to stdout."""
    engine = get_engine()
    if args.model == "win":
        from crm.ml.win import train_win
        summary = train_win(engine)
    elif args.model == "cross-sell":
        from crm.ml.crosssell import train_cross_sell
        summary = train_cross_sell(engine, level=args.level, horizon_days=args.horizon)
    else:
        from crm.ml.lead import train_lead
        summary = train_lead(engine)
    print(json.dumps(summary, indent=2, default=str))


def cmd_evaluate(args: argparse.Namespace) -> None:
    """The champion's holdout metrics and baselines, as JSON."""
    if args.model == "win":
        from crm.ml.win import evaluate_win as evaluate
    elif args.model == "cross-sell":
        from crm.ml.crosssell import evaluate_cross_sell as evaluate
    else:
        from crm.ml.lead import evaluate_lead as evaluate
    print(json.dumps(evaluate(), indent=2, default=str))


def cmd_score(args: argparse.Namespace) -> None:
    """Score with the champion: win (open deals, also stored on the deals), cross-sell (customers without the
    product, also stored for segments' "cross-sell likelihood" condition) or lead (every contact's lead score
    field). The CSV goes through the safe exporter."""
    from crm.exporting import frame_to_csv

    engine = get_engine()
    if args.model == "lead":
        from crm.ml.lead import update_lead_scores
        print(json.dumps(update_lead_scores(engine), indent=2, default=str))
        return
    if args.out is None:
        raise CRMError(f"score {args.model} needs --out FILE.csv")
    if args.model == "win":
        from crm.ml.win import score_open_deals
        frame = score_open_deals(engine)
    else:
        if not args.product:
            raise CRMError("score cross-sell needs --product NAME")
        from crm.ml.crosssell import score_product
        frame = score_product(engine, args.product, level=args.level, store=True)
    Path(args.out).write_bytes(frame_to_csv(frame[["id", "external_id", "probability"]]))
    print(f"Scored {len(frame):,} rows into {args.out}.")


def cmd_users_add(args: argparse.Namespace) -> None:
    from crm import users

    password = _read_password(confirm=True)
    with session_scope() as session:
        view = users.create_user(session=session, actor=None, data=UserCreate(
            email=args.email, full_name=args.name or args.email.split("@")[0], role=Role(args.role),
            team_id=_team_id(session, args.team), password=password))
    print(f"Added {view.role} {view.email} (id {view.id}).")


def cmd_users_list(args: argparse.Namespace) -> None:
    from crm.models import User

    with read_scope() as session:
        rows = session.exec(select(User).order_by(User.email)).all()
        for u in rows:
            print(f"{u.id}\t{u.email}\t{u.role}\t{'active' if u.active else 'inactive'}\t{u.full_name}")


def _user_id(session, email: str) -> int:
    from crm.auth import find_user_by_email

    user = find_user_by_email(session, email)
    if user is None:
        raise CRMError(f"no user with the email {email}")
    return user.id


def cmd_users_password(args: argparse.Namespace) -> None:
    from crm import users

    password = _read_password(confirm=True)
    with session_scope() as session:
        users.set_password(session=session, actor=None, user_id=_user_id(session, args.email), password=password)
    print(f"Password changed for {args.email}; any lockout is cleared.")


def cmd_users_deactivate(args: argparse.Namespace) -> None:
    from crm.audit import apply_changes, audit, load_for_update
    from crm.models import User

    with session_scope() as session:
        user = load_for_update(session, User, _user_id(session, args.email), label="User")
        diff = apply_changes(user, UserUpdate(active=not args.reactivate).model_dump(exclude_unset=True))
        if diff:
            audit(session, actor_id=None, entity="user", record_id=user.id, action="update", changes=diff,
                  record_version=user.version, context="cli")
    print(f"{args.email} is now {'active' if args.reactivate else 'inactive'}.")


def cmd_backup(args: argparse.Namespace) -> None:
    from crm.backup import backup_database

    print(f"Backed up to {backup_database(get_engine(), Path(args.file))}")


def cmd_restore(args: argparse.Namespace) -> None:
    from crm.backup import restore_database

    safety = restore_database(get_engine(), Path(args.file))
    upgrade_schema(get_engine())  # an older backup is brought up to this version's schema
    print(f"Restored from {args.file}." + (f" The previous database was saved to {safety}." if safety else ""))


def _named_admin(session, email: str):
    """Privacy requests are checked in crm/ against a real user's rights, so the CLI runs as that user."""
    from crm.permissions import load_actor

    return load_actor(session, _user_id(session, email))


def cmd_privacy_export(args: argparse.Namespace) -> None:
    from crm.privacy import export_contact_data

    with session_scope() as session:
        data = export_contact_data(session=session, actor=_named_admin(session, args.as_email),
                                   contact_id=args.contact_id, context="cli")
        text = json.dumps(data, indent=2, ensure_ascii=False)
        if args.output:  # written inside the transaction: a failed write leaves no export in the audit log
            Path(args.output).write_text(text + "\n", encoding="utf-8")
    if args.output:
        print(f"Exported contact {args.contact_id} to {args.output}.", file=sys.stderr)
    else:
        print(text)


def cmd_privacy_erase(args: argparse.Namespace) -> None:
    from crm.privacy import erase_contact

    if not args.yes:
        raise CRMError("erasing personal data cannot be undone; add --yes to confirm")
    with session_scope() as session:
        report = erase_contact(session=session, actor=_named_admin(session, args.as_email),
                               contact_id=args.contact_id, context="cli")
    if report.already_erased:
        print(f"Contact {args.contact_id} was already erased; nothing changed.")
        return
    print(f"Erased contact {args.contact_id}: {report.custom_values_deleted} custom values deleted, "
          f"{sum(report.rows_anonymised.values())} related rows and {report.audit_values_erased} audit values "
          "anonymised.")


def _acting(session, email: str | None):
    """The user a command acts as: `--as EMAIL`, else the first active admin (the operator of the machine)."""
    from crm.permissions import load_actor
    from crm.users import first_active_user_of_role

    user_id = _user_id(session, email) if email else first_active_user_of_role(session=session, role=Role.ADMIN)
    if user_id is None:
        raise CRMError("there is no active admin; name a user with --as EMAIL")
    return load_actor(session, user_id)


def cmd_segment_list(args: argparse.Namespace) -> None:
    from crm.segments.service import count_segment, list_segments

    with read_scope() as session:
        actor = _acting(session, args.as_email)
        segments = list_segments(session=session, actor=actor)
        for segment in segments:
            print(f"{segment.id}\t{segment.name}\t{segment.entity}\t{segment.kind}\t"
                  f"{count_segment(session=session, actor=actor, segment=segment)}")
    if not segments:
        print("No segments yet.", file=sys.stderr)


def cmd_segment_count(args: argparse.Namespace) -> None:
    from crm.segments.service import count_segment, get_segment

    with read_scope() as session:
        actor = _acting(session, args.as_email)
        print(count_segment(session=session, actor=actor, segment=get_segment(session=session, actor=actor,
                                                                              segment=args.name)))


def cmd_export_segment(args: argparse.Namespace) -> None:
    """The members through the safe exporter; the export is snapshotted and audited in the same transaction."""
    from crm.exporting import frame_to_bytes
    from crm.segments.actions import export_segment
    from crm.segments.service import get_segment

    path = Path(args.file)
    fmt = "xlsx" if path.suffix.lower() == ".xlsx" else "csv"
    with session_scope() as session:
        actor = _acting(session, args.as_email)
        result = export_segment(session=session, actor=actor,
                                segment=get_segment(session=session, actor=actor, segment=args.name),
                                include_do_not_contact=args.include_do_not_contact)
        path.write_bytes(frame_to_bytes(result.frame, fmt))  # inside the transaction: a failed write leaves no trace
    skipped = f"; {result.excluded_do_not_contact} do-not-contact left out" if result.excluded_do_not_contact else ""
    print(f"Exported {len(result.frame)} records to {path} (snapshot {result.snapshot.id}{skipped}).",
          file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> None:
    """Import a CSV/XLSX file; progress goes to stderr, and stdout holds only the JSON summary."""
    from tqdm import tqdm

    from crm.imports import Mapping, run_import

    mapping = None
    if args.mapping:
        try:
            raw = json.loads(Path(args.mapping).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CRMError(f"cannot read the mapping file {args.mapping}: {exc}") from None
        mapping = Mapping.model_validate({"entity": args.entity, **raw})
    if not Path(args.file).is_file():
        raise CRMError(f"no file at {args.file}")
    # disable=None: a bar on a terminal, nothing when stderr goes to a log.
    bar = tqdm(total=None, desc=f"import {args.entity}", unit="rows", file=sys.stderr, leave=False, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        with session_scope() as session:
            summary = run_import(session=session, actor=None, entity=args.entity, source=Path(args.file),
                                 mapping=mapping, dry_run=args.dry_run, progress=progress,
                                 error_dir=Path(args.error_dir) if args.error_dir else None)
    finally:
        bar.close()
    print(json.dumps(summary.as_json(), indent=2, default=str))


BENCH_PARTS = ("pages", "search", "pipeline", "models", "segments", "kpis", "duplicates", "import")  # crm.bench.PARTS, without importing it


def _bench_parts(value: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    if not parts or set(parts) - set(BENCH_PARTS):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(BENCH_PARTS)}, separated by commas")
    return parts


def cmd_bench(args: argparse.Namespace) -> None:
    from crm.bench import run_bench

    run_bench(size=args.size, seed=args.seed, output=Path(args.output), record=not args.no_record, reuse=args.reuse,
              parts=args.only)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crm", description="CRM command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("init", help="create or upgrade the database schema").set_defaults(func=cmd_init)

    demo = sub.add_parser("demo", help="fill an empty database with realistic demo data")
    demo.add_argument("--size", choices=["small", "medium", "large"], default="small")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--if-empty", action="store_true", help="do nothing if the database already has contacts")
    demo.set_defaults(func=cmd_demo)

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="action", required=True, metavar="ACTION")
    add = users.add_parser("add", help="add a user; the password is read from stdin")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name", help="full name (default: the part of the email before @)")
    add.add_argument("--team", help="team name")
    add.set_defaults(func=cmd_users_add)
    users.add_parser("list", help="list users").set_defaults(func=cmd_users_list)
    pw = users.add_parser("set-password", help="set a password (read from stdin) and clear any lockout")
    pw.add_argument("email")
    pw.set_defaults(func=cmd_users_password)
    deact = users.add_parser("deactivate", help="stop a user from signing in (or --reactivate)")
    deact.add_argument("email")
    deact.add_argument("--reactivate", action="store_true")
    deact.set_defaults(func=cmd_users_deactivate)

    sub.add_parser("reindex", help="rebuild the search index of contacts and companies").set_defaults(func=cmd_reindex)

    models = ("win", "cross-sell", "lead")
    train = sub.add_parser("train", help="train, evaluate, register and promote a model; prints a JSON summary")
    train.add_argument("model", choices=models)
    train.add_argument("--level", choices=["contact", "company"], default="contact", help="cross-sell customers")
    train.add_argument("--horizon", type=int, default=90, help="cross-sell: buys within this many days")
    train.set_defaults(func=cmd_train)
    score = sub.add_parser("score", help="score with the live model: win and cross-sell to a CSV file, lead into "
                                         "the contacts' lead score")
    score.add_argument("model", choices=models)
    score.add_argument("--out", help="the CSV file to write (win, cross-sell)")
    score.add_argument("--product", help="cross-sell: the product's name")
    score.add_argument("--level", choices=["contact", "company"], default="contact", help="cross-sell customers")
    score.set_defaults(func=cmd_score)
    evaluate = sub.add_parser("evaluate", help="the live model's holdout metrics and baselines, as JSON")
    evaluate.add_argument("model", choices=models)
    evaluate.set_defaults(func=cmd_evaluate)

    forecast = sub.add_parser("forecast", help="sales forecasts").add_subparsers(dest="action", required=True,
                                                                              metavar="ACTION")
    snapshot = forecast.add_parser("snapshot", help="store today's forecast (safe to run from cron, any number of "
                                                    "times a day) and refresh the stage durations")
    snapshot.set_defaults(func=cmd_forecast_snapshot)

    kpis = sub.add_parser("kpis", help="the KPI dashboard's data").add_subparsers(dest="action", required=True,
                                                                                 metavar="ACTION")
    kpis.add_parser("rebuild", help="recompute the KPI cube from the base tables").set_defaults(func=cmd_kpis_rebuild)

    automations = sub.add_parser("automations", help="automation rules").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    automations.add_parser("run", help="fire the time-triggered rules on everything due now (safe to run from cron "
                                       "at any frequency: each record fires once per occasion)"
                           ).set_defaults(func=cmd_automations_run)

    hygiene = sub.add_parser("hygiene", help="data hygiene (admins and managers)").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    duplicates = hygiene.add_parser("find-duplicates", help="scan for duplicate contacts and companies and store "
                                                            "the pairs for the data-hygiene page (JSON summary)")
    duplicates.add_argument("--entity", choices=["contact", "company", "all"], default="all")
    duplicates.add_argument("--min-score", type=float, default=0.5, help="store pairs scoring at least this (0..1)")
    duplicates.add_argument("--as", dest="as_email", metavar="EMAIL",
                            help="act as this user (default: the first active admin)")
    duplicates.set_defaults(func=cmd_hygiene_find_duplicates)

    privacy = sub.add_parser("privacy", help="a person's data requests: export or erase one contact (admins)")
    privacy = privacy.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = privacy.add_parser("export", help="everything held about a contact, as JSON (audited)")
    export.add_argument("contact_id", type=int)
    export.add_argument("--output", help="write the JSON to this file instead of stdout")
    erase = privacy.add_parser("erase", help="anonymise a contact's personal data everywhere; cannot be undone")
    erase.add_argument("contact_id", type=int)
    erase.add_argument("--yes", action="store_true", help="confirm the erasure")
    for command, handler in ((export, cmd_privacy_export), (erase, cmd_privacy_erase)):
        command.add_argument("--as", dest="as_email", required=True, metavar="EMAIL",
                             help="the admin making the request (needs the right privacy.erase)")
        command.set_defaults(func=handler)

    segment = sub.add_parser("segment", help="saved segments").add_subparsers(dest="action", required=True,
                                                                               metavar="ACTION")
    seg_list = segment.add_parser("list", help="id, name, entity, kind and member count of every segment")
    seg_list.set_defaults(func=cmd_segment_list)
    seg_count = segment.add_parser("count", help="how many members a segment has now")
    seg_count.add_argument("name", help="the segment's name or id")
    seg_count.set_defaults(func=cmd_segment_count)
    exports = sub.add_parser("export", help="export data through the safe exporter").add_subparsers(
        dest="what", required=True, metavar="WHAT")
    seg_export = exports.add_parser("segment", help="a segment's members to FILE (.csv or .xlsx); snapshotted")
    seg_export.add_argument("name", help="the segment's name or id")
    seg_export.add_argument("file")
    seg_export.add_argument("--include-do-not-contact", action="store_true",
                            help="also export contacts marked do-not-contact (recorded on the snapshot)")
    seg_export.set_defaults(func=cmd_export_segment)
    for command in (seg_list, seg_count, seg_export):
        command.add_argument("--as", dest="as_email", metavar="EMAIL",
                             help="act as this user (default: the first active admin)")

    backup = sub.add_parser("backup", help="copy the live SQLite database to FILE (online)")
    backup.add_argument("file")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="replace the database with the backup FILE (the current one is kept)")
    restore.add_argument("file")
    restore.set_defaults(func=cmd_restore)

    imp = sub.add_parser("import", help="import a CSV or XLSX file; prints a JSON summary (docs/import.md)")
    imp.add_argument("entity", choices=["companies", "contacts", "deals", "products", "orders", "activities",
                                        "tickets", "users"])
    imp.add_argument("file", help="the CSV or XLSX file")
    imp.add_argument("--mapping", help="a mapping JSON file (default: the suggested mapping)")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, change nothing")
    imp.add_argument("--error-dir", help="where the error file goes (default: data/imports)")
    imp.set_defaults(func=cmd_import)

    bench = sub.add_parser("bench", help="measure speed and memory; appends to docs/benchmarks.md")
    bench.add_argument("--size", choices=["small", "medium", "large"], default="small")
    bench.add_argument("--seed", type=int, default=42)
    bench.add_argument("--output", default="docs/benchmarks.md")
    bench.add_argument("--no-record", action="store_true", help="print only; do not append to the file")
    bench.add_argument("--reuse", action="store_true", help="reuse data/bench/SIZE.db if present (generation not timed)")
    bench.add_argument("--only", type=_bench_parts, default=BENCH_PARTS, metavar="PARTS",
                       help=f"comma-separated, from {', '.join(BENCH_PARTS)} (default: all)")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.func not in (cmd_init, cmd_demo, cmd_restore, cmd_backup, cmd_bench) and not has_schema(get_engine()):
            raise CRMError("the database has no CRM schema yet; run `python -m crm init` first")
        args.func(args)
    except CRMError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"error: {from_pydantic(exc).message}", file=sys.stderr)
        return 1
    except OperationalError as exc:
        print(f"error: database problem at {get_settings().database_url}: {exc.orig}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
