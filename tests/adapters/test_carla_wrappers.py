"""Data and model wrappers between ct-plugin and CARLA 0.0.5 (real CARLA, real data)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_carla_common import adult, moons_with_age, skip_without_carla, train_mlp

skip_without_carla()

from ct_plugin.adapters.carla.wrappers import (  # noqa: E402
    CarlaModel,
    SpecData,
    as_carla_model,
    catalog_logits,
    to_carla_model,
    train_catalog_model,
)
from ct_plugin.data.builder import from_arrays  # noqa: E402
from ct_plugin.errors import CTPluginError  # noqa: E402

pytestmark = pytest.mark.carla


@pytest.mark.parametrize("make", [moons_with_age, adult], ids=["moons_age", "adult"])
def test_round_trip_between_our_encoding_and_carla_space(make):
    spec = make()
    data = SpecData(spec)
    Z = np.concatenate([spec.X_train[:100], spec.X_test[:100]])
    U = data.to_carla(Z)
    assert U.min() >= -1e-9 and U.max() <= 1 + 1e-9  # CARLA's [0, 1] convention, bounds = our domain
    assert np.abs(data.from_carla(U) - Z).max() < 1e-6
    # CARLA's own transform / inverse_transform in original units agree with our encode / decode
    raw = spec.decode(Z)
    assert np.abs(data.transform(raw)[data.columns].to_numpy() - U).max() < 1e-6
    back = data.inverse_transform(data.frame(Z))
    for name in spec.continuous:
        assert np.allclose(back[name].to_numpy(dtype=float), raw[name].to_numpy(dtype=float))
    for name in spec.categorical:
        assert (back[name] == raw[name]).all()
    # CARLA's conventions: binary categoricals are one column, label included, immutables by raw name
    assert len(data.columns) == len(spec.continuous) + sum(
        1 if len(levels) == 2 else len(levels) for levels in spec.categorical.values()
    )
    assert spec.target in data.df.columns and "age" in data.immutables
    assert list(data.encoder.get_feature_names(data.categorical)) == [
        c for c in data.columns if c not in data.continuous
    ]


def test_model_wrapper_probabilities_and_gradients():
    spec = adult(1000)
    model = train_mlp(spec, epochs=2)
    data = SpecData(spec)
    mlmodel = CarlaModel(model, data)
    frame = data.df_test.head(20)
    probs = mlmodel.predict_proba(frame)
    with torch.no_grad():
        expected = torch.softmax(model(torch.as_tensor(spec.X_test[:20])), dim=1).numpy()
    assert probs.shape == (20, 2) and np.allclose(probs, expected, atol=1e-5)
    assert np.allclose(mlmodel.predict(frame)[:, 0], expected[:, 1], atol=1e-5)
    values = frame[data.columns].to_numpy(dtype=np.float32, copy=True)  # pandas 3 hands out read-only arrays
    u = torch.as_tensor(values, dtype=torch.float32).requires_grad_(True)
    out = mlmodel.predict_proba(u)
    assert torch.is_tensor(out)
    out[:, 1].sum().backward()
    assert u.grad is not None and u.grad.abs().sum() > 0
    # the class-swapped view: class 0 presented as the desired class 1
    swapped = as_carla_model(model, spec, swapped=True)
    assert np.allclose(swapped.predict_proba(frame), probs[:, ::-1], atol=1e-6)
    assert (swapped.data.df[spec.target].to_numpy() == 1 - spec.y_train).all()


def test_model_wrapper_sees_the_live_module():
    spec = moons_with_age()
    model = train_mlp(spec, epochs=2)
    mlmodel = as_carla_model(model, spec)
    frame = mlmodel.data.df_test.head(5)
    before = mlmodel.predict_proba(frame)
    with torch.no_grad():
        model[2].bias += torch.tensor([3.0, -3.0])
    assert not np.allclose(mlmodel.predict_proba(frame), before)


def test_multiclass_model_and_dataset_refused():
    spec = moons_with_age()
    with pytest.raises(CTPluginError, match="binary classifiers only"):
        CarlaModel(train_mlp(spec, epochs=1, n_classes=3), SpecData(spec))
    rng = np.random.default_rng(0)
    three = from_arrays(rng.normal(size=(60, 2)), np.arange(60) % 3, name="three")
    with pytest.raises(CTPluginError, match="3 classes; CARLA supports binary"):
        SpecData(three)


def test_label_column_named_y_refused():
    spec = dataclasses.replace(moons_with_age(), target="y")
    with pytest.raises(CTPluginError, match="label column named 'y'"):
        SpecData(spec)


def test_catalog_model_as_starting_point_and_back():
    spec = adult(1500)
    catalog = train_catalog_model(spec, epochs=2, hidden_size=(8, 4))
    module = catalog_logits(catalog, spec)
    X = torch.as_tensor(spec.X_test[:30])
    data = SpecData(spec)
    carla_probs = catalog.predict_proba(data.frame(spec.X_test[:30])[catalog.feature_input_order])
    with torch.no_grad():
        ours = torch.softmax(module(X), dim=1).numpy()
    assert np.allclose(ours, carla_probs, atol=1e-5)
    # fine-tune one step through our module: the catalog model (shared parameters) changes too
    optimiser = torch.optim.SGD(module.parameters(), lr=1.0)
    optimiser.zero_grad()
    torch.nn.functional.cross_entropy(module(X), torch.as_tensor(spec.y_test[:30])).backward()
    optimiser.step()
    after = catalog.predict_proba(data.frame(spec.X_test[:30])[catalog.feature_input_order])
    assert not np.allclose(after, carla_probs)
    handed_back = to_carla_model(module, spec)
    with torch.no_grad():
        expected = torch.softmax(module(X), dim=1).numpy()
    assert np.allclose(handed_back.predict_proba(data.frame(spec.X_test[:30])), expected, atol=1e-5)


def test_catalog_model_fine_tuned_with_ct_through_the_trainer():
    import ct_plugin

    spec = moons_with_age()
    catalog = train_catalog_model(spec, epochs=3, hidden_size=(8, 4))
    module = catalog_logits(catalog, spec)
    frame = SpecData(spec).frame(spec.X_test[:20])[catalog.feature_input_order]
    before = catalog.predict_proba(frame)
    result = ct_plugin.train(
        spec, model=module, strategy="ct", generator="carla-wachter", tau=0.5, epochs=2, nce=16, quiet=True
    )
    assert result.model is module and len(result.log) == 2
    assert not np.allclose(catalog.predict_proba(frame), before)  # CARLA's catalog model was fine-tuned
    handed_back = to_carla_model(result.model, spec)
    assert np.allclose(
        handed_back.predict_proba(SpecData(spec).frame(spec.X_test[:20])), catalog.predict_proba(frame), atol=1e-5
    )
