"""Context for concepts.rst "Groups": the BlogUpdate model its liveblog saves.

The test creates its table itself (this package is not an installed app).
"""

from django.db import models


class BlogUpdate(models.Model):
    content = models.TextField()

    class Meta:
        app_label = "docs1x"

    def __str__(self) -> str:
        return self.content
