"""SSD-lite: a small SSD net (PriorBox, Permute, Flatten, Concat heads on two feature levels)
trained by `caffe train` on the detector example's textured digit scenes, with C++ MultiBoxLoss
as SSD ships it and with MultiBoxFocalLossLayer (sigmoid focal loss, no mining, the prior bias),
each scored by DetectionOutput and pycocotools: a net of the detector study (examples.study).
docs/examples.md, section "SSD-lite".

    data.py        writes the scenes as npz files
    batches.py     reads them; SSD's label rows; the batch order (numpy only)
    data_layer.py  the Python data layer `caffe train` runs (tops data and label)
    prototxt.py    writes prototxt/ssd/ (python -m examples.ssd.prototxt)
    training.py    the two solver stages (linear warm-up, then the main schedule)
    scoring.py     the deploy nets with DetectionOutput, then COCO AP
    experiment.py  the study's adapter: data, a run prepared under a protocol, scoring
"""
