"""Sub-commands of the ``keras-seg`` command line, one module each (see ``keras_seg.cli``)."""
