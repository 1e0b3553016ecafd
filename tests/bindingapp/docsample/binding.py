# The 1.x sample's consumers module imports the binding "from .binding"; the
# docs define it together with the model (docsample/models.py). Not a sample.
from .models import IntegerValueBinding  # noqa: F401
