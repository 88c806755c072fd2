"""Shared library for the Fashion-MNIST pipeline: each piece the stages need, written once.

Modules: ``idx`` (IDX codec), ``params`` (params.yaml schema), ``atomic`` (atomic writes),
``download`` (verified fetching), ``dataset`` (raw decoding, scaling, split, prepared arrays),
``stage`` (error reporting for stage entry points).
"""
