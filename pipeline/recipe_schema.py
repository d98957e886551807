"""The JSON Schema of a recipe, for editors (`compress recipe schema`): the header plus one
alternative per registered stage, built from the same typed configs that validate a recipe."""

from __future__ import annotations

from pydantic import ConfigDict, Field, create_model

from pipeline.recipe import RecipeHeader
from pipeline.stages import STAGES


def recipe_schema() -> dict:
    """JSON Schema of a recipe, for editors: the header plus one alternative per registered stage."""
    stage_models = [
        create_model(
            f"{name.title().replace('_', '')}Entry",
            __config__=ConfigDict(extra="forbid"),
            **{f"stage_{name}": (STAGES.get(name).config, Field(alias=name))},  # alias: `validate` would shadow BaseModel.validate
        )
        for name in STAGES.names()
    ]
    schema = RecipeHeader.model_json_schema()
    defs = schema.setdefault("$defs", {})
    alternatives = []
    for model in stage_models:
        sub = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[model.__name__] = sub
        alternatives.append({"$ref": f"#/$defs/{model.__name__}"})
    schema["properties"]["stages"]["items"] = {"oneOf": alternatives}
    schema["title"] = "compress recipe"
    return schema
