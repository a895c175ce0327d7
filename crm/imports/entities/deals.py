"""Deals, open and closed: pipeline and stage by name, status from the stage, a product line, and stage history.

A closed deal gets two history rows (the pipeline's first open stage from opened_at, then its won or lost stage
from closed_at), so win rates and cycle times work on imported history. An open deal gets one, for its stage.
"""
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from crm.errors import PermissionDenied, ValidationFailed, from_pydantic
from crm.imports.context import Context, Row
from crm.imports.entities.base import Importer
from crm.imports.lookups import StageInfo
from crm.imports.writing import Writer
from crm.models import Deal, DealLineItem, DealStageHistory, DealStatus, ForecastCategory, Pipeline, Stage, StageInput

_KEEP = ("title", "pipeline_id", "stage_id", "amount", "currency", "expected_close", "closed_at", "owner_id",
         "company_id", "contact_id", "forecast_category", "lost_reason_id", "source", "next_step", "stage_entered_at",
         "external_id")
_GIVEN = {"title": "title", "amount": "amount", "currency": "currency", "expected_close": "expected_close",
          "closed_at": "closed_at", "owner": "owner_id", "company": "company_id", "contact": "contact_id",
          "lost_reason": "lost_reason_id", "source": "source", "next_step": "next_step", "external_id": "external_id"}


class PipelineSpec(BaseModel):
    """options.create_pipeline: a pipeline the mapping explicitly asks for, created if no pipeline has its name."""
    name: str = Field(min_length=1, max_length=120)
    stages: list[StageInput]


class DealImporter(Importer):
    entity, record, model = "deals", "deal", Deal

    def prepare(self, ctx: Context, writer: Writer) -> None:
        lookups = ctx.lookups
        if spec := ctx.option("create_pipeline"):
            self.pipeline_id = self._ensure_pipeline(ctx, writer, spec)
        elif name := ctx.option("pipeline"):
            try:
                self.pipeline_id = lookups.pipeline(name)
            except ValueError as exc:
                raise ValidationFailed("options.pipeline", str(exc)) from None
        else:
            self.pipeline_id = lookups.default_pipeline
        self.lines: dict[int, list[dict]] = {}
        self.open_history: dict[int, dict] = {}

    def _ensure_pipeline(self, ctx: Context, writer: Writer, raw: dict) -> int:
        try:
            spec = PipelineSpec.model_validate(raw)
        except ValidationError as exc:
            raise ValidationFailed("options.create_pipeline", from_pydantic(exc).message) from None
        if ctx.lookups.pipelines.find("name", spec.name):
            return ctx.lookups.pipeline(spec.name)
        if ctx.actor is not None and not ctx.actor.can("admin.configure"):
            raise PermissionDenied("The mapping asks to create a pipeline; only admins may create pipelines.")
        kinds = [(s.is_won, s.is_lost) for s in spec.stages]
        names = [s.name.strip().casefold() for s in spec.stages]
        if (True, False) not in kinds or (False, True) not in kinds or (False, False) not in kinds \
                or (True, True) in kinds or len(set(names)) != len(names):
            raise ValidationFailed("options.create_pipeline", "a pipeline needs uniquely named stages: at least one "
                                                              "open, one won and one lost")
        position = (ctx.session.execute(select(Pipeline.position).order_by(Pipeline.position.desc())).scalar() or 0) + 1
        [pipeline_id] = writer.insert(Pipeline, [{"name": spec.name.strip(), "position": position}], entity="pipeline")
        ctx.lookups.pipelines.add(pipeline_id, spec.name.strip(), name=spec.name.strip())
        rows = [{"pipeline_id": pipeline_id, "name": s.name.strip(), "position": i, "probability": s.probability,
                 "is_won": s.is_won, "is_lost": s.is_lost} for i, s in enumerate(spec.stages)]
        for r, stage_id in zip(rows, writer.insert(Stage, rows, entity="stage")):
            ctx.lookups.add_stage(StageInfo(stage_id, pipeline_id, r["name"], r["position"], r["is_won"], r["is_lost"]))
        ctx.also_created["pipeline"] += 1
        ctx.also_created["stage"] += len(rows)
        return pipeline_id

    def load_related(self, ctx: Context, record_ids: list[int]) -> None:
        for lo in range(0, len(record_ids), 500):
            part = record_ids[lo:lo + 500]
            for r in ctx.session.execute(select(DealLineItem.__table__)
                                         .where(DealLineItem.deal_id.in_(part))).mappings():
                self.lines.setdefault(r["deal_id"], []).append(dict(r))
            for r in ctx.session.execute(select(DealStageHistory.__table__).where(
                    DealStageHistory.deal_id.in_(part), DealStageHistory.exited_at.is_(None))).mappings():
                self.open_history[r["deal_id"]] = dict(r)

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        given, old = row.values, row.existing or {}
        values = {k: old.get(k) for k in _KEEP}
        values.update({_GIVEN[k]: v for k, v in given.items() if k in _GIVEN})
        pipeline_id = given.get("pipeline") or old.get("pipeline_id") or self.pipeline_id
        if pipeline_id is None:
            raise ValidationFailed("pipeline", "there is no pipeline to put the deal in")
        stage = self._stage(ctx, row, pipeline_id)
        status = DealStatus.WON if stage.is_won else DealStatus.LOST if stage.is_lost else DealStatus.OPEN
        values.update(pipeline_id=pipeline_id, stage_id=stage.id, status=str(status))
        self._dates(ctx, row, values, status, stage)
        line = self._line(ctx, row)
        if values["amount"] is None:
            values["amount"] = line["quantity"] * line["unit_price"] * (1 - line["discount"]) if line else 0.0
            ctx.note(row, "no amount: the product line's value is used" if line else "no amount: 0 is used")
        if row.existing is None and values["company_id"] is None:
            ctx.note(row, "no company")
        if values["lost_reason_id"] is not None and status != DealStatus.LOST:
            raise ValidationFailed("lost_reason", "only a lost deal has a lost reason")
        values["currency"] = self._currency(values["currency"])
        if not values["title"]:
            values["title"] = self._title(ctx, values, line)
            ctx.note(row, "no title: one is made from the company and product")
        values["forecast_category"] = str(ForecastCategory.CLOSED) if status != DealStatus.OPEN else (
            values["forecast_category"] if values["forecast_category"] not in (None, ForecastCategory.CLOSED)
            else str(ForecastCategory.PIPELINE))
        row.extra["line"] = line
        row.extra["dependants_changed"] = bool(row.existing and line and not self._has_line(old["id"], line))
        return values

    def _stage(self, ctx: Context, row: Row, pipeline_id: int) -> StageInfo:
        stages = ctx.lookups.stages.get(pipeline_id, [])
        status = row.values.get("status")
        if text := row.values.get("stage"):
            try:
                stage = ctx.lookups.stage(pipeline_id, text)
            except ValueError as exc:
                raise ValidationFailed("stage", str(exc)) from None
            derived = "won" if stage.is_won else "lost" if stage.is_lost else "open"
            if status and str(status) != derived:
                raise ValidationFailed("status", f"{status} contradicts the stage {stage.name!r}, which is {derived}")
            return stage
        current = next((s for s in stages if row.existing and s.id == row.existing["stage_id"]), None)
        wanted = str(status) if status else None
        fits = {"won": lambda s: s.is_won, "lost": lambda s: s.is_lost,
                "open": lambda s: not (s.is_won or s.is_lost)}
        if current and (wanted is None or fits[wanted](current)):
            return current
        choice = next((s for s in stages if fits[wanted or "open"](s)), None)
        if choice is None:
            raise ValidationFailed("stage", "the pipeline has no stage for this deal")
        return choice

    def _dates(self, ctx: Context, row: Row, values: dict, status: DealStatus, stage: StageInfo) -> None:
        opened: datetime | None = row.values.get("opened_at")
        if status == DealStatus.OPEN:
            if row.values.get("closed_at"):
                raise ValidationFailed("closed_at", "an open deal has no close date (or the stage should be won/lost)")
            values["closed_at"] = None
        elif values["closed_at"] is None:
            raise ValidationFailed("closed_at", f"is required for a {status} deal")
        start = opened or (row.existing or {}).get("created_at")
        if start and values["closed_at"] and values["closed_at"] < start:
            raise ValidationFailed("closed_at", "is before the deal was opened")
        if row.existing is None:
            values["created_at"] = opened or values["closed_at"] or ctx.now
            if opened is None:
                ctx.note(row, "no opened_at: the close date is used" if values["closed_at"] else
                         "no opened_at: the import time is used")
            values["stage_entered_at"] = values["closed_at"] or opened or ctx.now
        elif stage.id != row.existing["stage_id"]:
            values["stage_entered_at"] = values["closed_at"] or ctx.now

    def _line(self, ctx: Context, row: Row) -> dict | None:
        product = row.values.get("product")
        if product is None:
            for extra in ("quantity", "unit_price", "discount"):
                if extra in row.values:
                    raise ValidationFailed(extra, "only goes with a product")
            return None
        quantity = row.values.get("quantity", 1.0)
        if quantity <= 0:
            raise ValidationFailed("quantity", "must be above 0")
        discount = row.values.get("discount", 0.0)
        if not 0 <= discount <= 1:
            raise ValidationFailed("discount", "is a fraction between 0 and 1")
        price = row.values.get("unit_price", ctx.lookups.product_price.get(product, 0.0))
        return {"product_id": product, "quantity": quantity, "unit_price": price, "discount": discount}

    def _has_line(self, deal_id: int, line: dict) -> bool:
        return any(all(existing[k] == v for k, v in line.items()) for existing in self.lines.get(deal_id, ()))

    @staticmethod
    def _currency(text: str | None) -> str:
        code = (text or "USD").strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise ValidationFailed("currency", f"{text!r} is not a three-letter currency code such as USD")
        return code

    @staticmethod
    def _title(ctx: Context, values: dict, line: dict | None) -> str:
        lookups = ctx.lookups
        parts = [lookups.companies.names.get(values["company_id"]),
                 lookups.products.names.get((line or {}).get("product_id"))]
        title = " – ".join(p for p in parts if p) or (f"Deal {values['external_id']}" if values["external_id"] else "")
        if not title:
            raise ValidationFailed("title", "is required when the row names no company, product or external id")
        return title[:200]

    def label(self, values: dict[str, Any]) -> str:
        return values["title"]

    def register(self, ctx: Context, row: Row) -> None:
        ctx.lookups.deals.add(row.record_id, row.final["title"], external_id=row.final.get("external_id"))

    def dependants(self, ctx: Context, writer: Writer, created: list[Row], updated: list[Row]) -> None:
        lines = [{"deal_id": r.record_id, **r.extra["line"]} for r in created + updated
                 if r.extra.get("line") and not (r.existing and self._has_line(r.record_id, r.extra["line"]))]
        writer.insert(DealLineItem, lines, entity="deal_line_item", audited=False)
        history, closing = [], []
        for row in created:
            history += self._history(ctx, row)
        for row in updated:
            if row.final["stage_id"] != row.existing["stage_id"]:
                entered = row.final["stage_entered_at"]
                if current := self.open_history.get(row.record_id):
                    closing.append((current, {"exited_at": entered}, current["version"] + 1))
                history.append(self._entry(ctx, row.record_id, row.final["stage_id"], entered, None))
        writer.update(DealStageHistory, "deal_stage_history", closing, audited=False)
        writer.insert(DealStageHistory, history, entity="deal_stage_history", audited=False)

    def _history(self, ctx: Context, row: Row) -> list[dict]:
        f = row.final
        if f["status"] == DealStatus.OPEN:
            return [self._entry(ctx, row.record_id, f["stage_id"], f["created_at"], None)]
        first = next(s for s in ctx.lookups.stages[f["pipeline_id"]] if not (s.is_won or s.is_lost))
        return [self._entry(ctx, row.record_id, first.id, f["created_at"], f["closed_at"]),
                self._entry(ctx, row.record_id, f["stage_id"], f["closed_at"], None)]

    @staticmethod
    def _entry(ctx: Context, deal_id: int, stage_id: int, entered: datetime, exited: datetime | None) -> dict:
        return {"deal_id": deal_id, "stage_id": stage_id, "entered_at": entered, "exited_at": exited,
                "changed_by_id": ctx.actor_id}
