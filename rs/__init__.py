"""rs: Ray-distributed surrogate and diffusion models of phase-field solidification."""

__version__ = "0.1.0"


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # `rs.evaluate(checkpoint, …)` without importing torch when `rs` alone is imported.
    if name == "evaluate":
        from rs.eval import evaluate

        return evaluate
    raise AttributeError(f"module 'rs' has no attribute {name!r}")
