import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import type { FileOutputs } from "../file-outputs.js";
import type { RouteTable } from "../http.js";
import type { PredictionService } from "../predictions-service.js";

export interface RouteDeps {
  app: FastifyInstance;
  table: RouteTable;
  ctx: ServerContext;
  predictions: PredictionService;
  fileOutputs: FileOutputs;
}
