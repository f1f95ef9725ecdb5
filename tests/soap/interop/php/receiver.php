<?php
// A PACS's callback service in PHP, as a vendor writes one: ext/soap's SoapServer in WSDL mode
// on the PacsCallbackService WSDL, each operation a method. It keeps what it received in a
// JSON-lines file (HIS_PACS_RECEIVED) and drops repeated MessageIds, as the contract asks.
// Run with PHP's built-in server: php -S 127.0.0.1:PORT receiver.php
ini_set('soap.wsdl_cache_enabled', '0');

class PacsCallback {
    private function keep(string $operation, $request, string $what): array {
        $file = getenv('HIS_PACS_RECEIVED');
        $seen = file_exists($file) ? file_get_contents($file) : '';
        $repeat = strpos($seen, '"' . $request->MessageId . '"') !== false;
        file_put_contents($file, json_encode([
            'operation' => $operation, 'message_id' => $request->MessageId, 'sequence' => (int) $request->Sequence,
            'what' => $what, 'repeat' => $repeat,
        ], JSON_UNESCAPED_UNICODE) . "\n", FILE_APPEND | LOCK_EX);
        return [$operation . 'Result' => ['Accepted' => true, 'Note' => $repeat ? 'already handled' : null]];
    }

    public function ApplicationReleased($args) {
        $app = $args->request->Application;
        $items = is_array($app->Items->ApplicationItem) ? $app->Items->ApplicationItem : [$app->Items->ApplicationItem];
        $what = sprintf('%s %s %s %s %s', $app->ApplicationNo, $app->Status, $app->Patient->Name,
                        $items[0]->ItemName, $items[0]->UnitPrice);
        return $this->keep('ApplicationReleased', $args->request, $what);
    }

    public function ApplicationCancelled($args) {
        $app = $args->request->Application;
        return $this->keep('ApplicationCancelled', $args->request, $app->ApplicationNo . ' ' . $app->Status);
    }

    public function CriticalValueUpdated($args) {
        $cv = $args->request->CriticalValue;
        return $this->keep('CriticalValueUpdated', $args->request, $cv->CriticalValueNo . ' ' . $cv->Status);
    }
}

if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    echo "PacsCallbackService (PHP)\n";
    return;
}
$server = new SoapServer(getenv('HIS_PACS_CALLBACK_WSDL'), ['encoding' => 'UTF-8']);
$server->setClass('PacsCallback');
$server->handle();
