"""Steps of the one-command demo (``netgaze.demo``) that grew past a few lines: each module trains
its models and runs its studies through the ``DemoSession`` it is given (timings, skip notes, settings)."""
