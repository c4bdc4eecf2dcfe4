// Filling in a canned response's placeholders ({customer_name}, {order_code} …) for the open
// conversation: the server knows the customer and their latest order. Without a conversation, or if
// the call fails, the reply goes in as written, placeholders and all, for the agent to fill in.
import { api } from "./api.js";

export async function expandCanned(item, conversationId) {
  if (!conversationId || !/\{[A-Za-z_]\w*\}/.test(item.text)) return item.text;
  try {
    const filled = await api(`/api/canned-responses/${item.id}/expand`, {
      method: "POST", body: { conversation_id: conversationId } });
    return filled.text;
  } catch (_) {
    return item.text;
  }
}
