"""The explanation core every method stands on (public names are re-exported by ``netgaze``).

- ``layers``: layer references (dotted ``named_modules()`` names, modules, stage indices);
- ``stages``: the rule that lists a model's spatial stages (``layer=-1`` is the last);
- ``layouts``: recorded outputs (channels-first, channels-last, tokens) to ``[B, C, h, w]`` and back;
- ``recorder``: ``Recorder``, the only code that sets hooks;
- ``targets``: ``Class``, ``TopClass``, ``Area``, ``Latent`` (output -> one score per picture);
- ``detection``: ``Detection``, the target that explains one detected box;
- ``inputs``: models that take several inputs (a tuple of tensors);
- ``layer_entries``: the parts of a layer output that is a tuple or a dict.
"""
