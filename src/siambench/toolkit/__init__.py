"""What the evaluation stages share on top of ``data`` and ``engine``.

``features``: frozen features, one pass of an encoder over a dataset, cached
on disk (kNN, logistic regression, the pretraining monitor). ``finetune``:
the supervised loop that fine-tuning stages train with (semi-supervised,
transfer). ``engine`` below it knows nothing of datasets or configs.
"""
