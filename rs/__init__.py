"""rs: Ray-distributed surrogate and diffusion models of phase-field solidification."""

__version__ = "0.1.0"


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # `rs.train(config)`, `rs.tune.sweep(config)`, `rs.evaluate(checkpoint)` after a bare `import rs`,
    # without importing torch and Ray until one is used.
    if name == "evaluate":
        from rs.eval import evaluate

        return evaluate
    if name in ("train", "tune"):
        import importlib

        return importlib.import_module(f"rs.{name}")
    raise AttributeError(f"module 'rs' has no attribute {name!r}")
