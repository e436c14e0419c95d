export { fileExtensionFor } from "./file-extensions.js";
export {
  fileInputFields,
  type InputFetch,
  InputFileError,
  type MaterializeInputsOptions,
  materializeInputs,
  type OwnFile,
} from "./materialize-inputs.js";
