/** A model that ships with the server; its predictor runs in runner processes like any other. */
export interface BuiltinModel {
  owner: string;
  name: string;
  /** Fixed version id, so the version survives restarts and matches Replicate's where one exists. */
  versionId: string;
  description: string;
  readme: string;
  /** Absolute path of the compiled predictor module (default export: a predictor). */
  predictorPath: string;
  /** Shown in models.list; unlisted ones are templates that need the user's weights. Default true. */
  listed?: boolean;
  /** The server's environment variables the model reads (its settings); runners get no others. */
  environment?: readonly string[];
}
