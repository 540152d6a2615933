"""Serving: everything after a model is registered, in rooms with one concern each (docs/architecture.md).

==================  ==========================================================================
room                what it holds
==================  ==========================================================================
``settings``        the service's settings (stores, tokens, limits, checkpoints, console)
``storage``         the one database engine factory and the one private-file writer
``auth``            roles, permissions and bearer tokens
``scoring/``        records in, answers out: scorer, reasons, combining, served models, schemas
``audit/``          the trail: hash-chained store, its recipe, signed checkpoints, offline verify
``cases/``          case store, imports, due list, tier decisions, review meeting, reports
``console/``        the web pages, built on the service's core and the rooms above
``api/``            the BentoML service: routes, middleware, OpenAPI, refusals, metrics
``cli/``            ``riskctl``: the root and its serve, score, token, audit, cases, review commands
==================  ==========================================================================

Arrows run one way: settings, storage -> auth -> scoring, audit -> cases -> console -> api -> cli
(import-linter contracts in pyproject.toml). A room uses another only through its package face.
"""
