"""Machine learning only, by purpose: ``models.serving`` (what the running node needs to turn
a study into a result), ``models.training`` (training and evaluation on a site's labelled
data, used by the CLI) and the synthetic phantoms for the demo, the samples and the tests.
Works on arrays, data sets and stored files; knows no DICOM network and no database.
``models.errors.ModelError`` is the root of every error raised here on purpose."""
