"""Fine-tune or train the SFace embedding network (``faceapp train``).

One module per job: :mod:`.config` (typed options), :mod:`.data` (scan, detect + align
once, cache, split by person, ``tf.data`` input pipeline), :mod:`.heads` (margin heads,
training only), :mod:`.loop` (``model.fit`` with the verification callback), :mod:`.export`
(model directory + card), :mod:`.run` (one run end to end), :mod:`.folds` (K-fold by
person), :mod:`.search` (random hyper-parameter search), :mod:`.commands` (the CLI). Nothing heavy is imported here.
"""
