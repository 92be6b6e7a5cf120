import numpy as np

from segkit.data.ade20k import CLASS_NAMES as ADE
from segkit.data.cityscapes import CLASS_NAMES as CITYSCAPES
from segkit.data.class_mapping import find_class_mapping
from segkit.data.mapillary import builtin_labels


def test_mapillary_to_cityscapes_table():
    names = [lab.name for lab in builtin_labels("v1.2") if lab.evaluate]
    name, table = find_class_mapping(names, CITYSCAPES)
    assert name == "Mapillary Vistas -> Cityscapes" and table.shape == (65,)
    assert table[names.index("construction--flat--road")] == CITYSCAPES.index("road")
    assert table[names.index("human--rider--motorcyclist")] == CITYSCAPES.index("rider")
    assert table[names.index("animal--bird")] == -1
    assert set(table[table >= 0].tolist()) == set(range(19))


def test_no_mapping_declared():
    assert find_class_mapping(ADE, CITYSCAPES) is None
    assert find_class_mapping(CITYSCAPES, ADE) is None
    names = [lab.name for lab in builtin_labels("v2.0") if lab.evaluate]
    assert find_class_mapping(names, ADE) is None and find_class_mapping(CITYSCAPES, names) is None
    assert isinstance(find_class_mapping(names, CITYSCAPES)[1], np.ndarray)
