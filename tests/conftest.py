import json
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def torchvision_keys() -> dict:
    return json.loads((FIXTURES / "torchvision_keys.json").read_text())["archs"]
